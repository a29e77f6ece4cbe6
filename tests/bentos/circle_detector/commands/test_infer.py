"""`circle-detector infer` against the real Bento, over REST and gRPC."""

from __future__ import annotations

import argparse
import contextlib
import json

import pytest

from bentos.circle_detector.commands import infer
from tests.bentos.circle_detector.images import circles_image, encode, reference


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    infer.configure(parser)
    return infer.run(parser.parse_args(argv))


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("infer-images")
    images = [circles_image(64, 64, 31), circles_image(90, 70, 32, channels=3)]
    paths = []
    for i, image in enumerate(images):
        path = folder / f"img{i}.png"
        path.write_bytes(encode(image))
        paths.append(path)
    return images, paths


@pytest.mark.parametrize("grpc", [False, True])
def test_prints_detections_and_latency(bento_server, image_files, capsys, grpc):
    images, paths = image_files
    url = bento_server.grpc_url if grpc else bento_server.http_url
    argv = ["--url", url, "--json", "--score-threshold", "0", "--max-detections", "5"]
    argv += ["--host-header", "circle-detector.default.example.com"]
    assert _run([*argv, *(["--grpc"] if grpc else []), *map(str, paths)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["latency_ms"] > 0
    expected = reference(images, 0.0, 5)
    assert [i["num_detections"] for i in report["images"]] == [len(e) for e in expected]
    assert [i["image"] for i in report["images"]] == [str(p) for p in paths]


def test_human_output(bento_server, image_files, capsys):
    _, paths = image_files
    assert _run(["--url", bento_server.http_url, str(paths[0])]) == 0
    out = capsys.readouterr().out
    assert "circle(s)" in out and "latency:" in out


def test_missing_file_and_refused_image(bento_server, tmp_path, capsys):
    assert _run(["--url", bento_server.http_url, str(tmp_path / "absent.png")]) == 2
    assert "cannot read" in capsys.readouterr().err
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not a png")
    assert _run(["--url", bento_server.http_url, str(junk)]) == 1
    assert "not a recognised image" in capsys.readouterr().err


def test_unreachable_server(tmp_path, capsys, image_files):
    _, paths = image_files
    assert _run(["--url", "127.0.0.1:9", "--timeout", "2", str(paths[0])]) == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.fixture
def recording_proxy(bento_server):
    """A TCP proxy in front of the real Bento that keeps the bytes clients send (to see Host)."""
    import socket
    import threading

    seen = bytearray()
    upstream_host, upstream_port = bento_server.http_url.rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pump(src, dst, record):
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                if record:
                    seen.extend(chunk)
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection((upstream_host, int(upstream_port)))
            threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", seen
    stop.set()
    thread.join(5)
    listener.close()


def test_host_header_reaches_the_server(recording_proxy, image_files, capsys):
    url, seen = recording_proxy
    _, paths = image_files
    host = "circle-detector.models.example.com"
    assert _run(["--url", url, "--host-header", host, str(paths[0])]) == 0
    assert f"Host: {host}".encode() in bytes(seen)
    assert "latency:" in capsys.readouterr().out
