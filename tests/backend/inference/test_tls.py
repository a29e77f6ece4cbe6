"""MODEL_SERVER_URL=https:// (and grpcs://): TLS to the model server, verified against
MODEL_SERVER_CA_BUNDLE, never plain text. The TLS endpoint is a real TLS-terminating proxy on
127.0.0.1 (a self-signed certificate made by openssl) in front of the real Bento."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.config import Protocol, Settings
from backend.inference import InferenceError, ModelMisconfiguredError
from backend.inference.v2 import V2Client
from tests.backend.helpers import API, circles_png, running_backend, upload
from tests.backend.inference.tls import self_signed, tls_proxy

TRANSPORTS = [(Protocol.HTTP, "https"), (Protocol.GRPC, "grpcs")]
LOOSE = {"width": 160, "height": 120, "score_threshold": 0.0, "max_detections": 20}


@pytest.fixture(scope="module")
def tls(bento_server, tmp_path_factory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder)
    with (
        tls_proxy(bento_server.http_url, cert, key) as https,
        tls_proxy(bento_server.grpc_url, cert, key) as grpcs,
    ):
        yield {"cert": cert, "https": https, "grpcs": grpcs}


def tls_client(url: str, protocol: Protocol, cert: Path | None) -> V2Client:
    settings = Settings(
        model_server_url=url, model_protocol=protocol, model_server_ca_bundle=cert or None
    )
    assert settings.model_server_tls
    return V2Client(settings)


@pytest.mark.parametrize(("protocol", "scheme"), TRANSPORTS)
async def test_tls_with_the_ca_bundle_detects(tls, bento_server, protocol, scheme):
    address = tls[scheme]
    client = tls_client(f"{scheme}://{address}", protocol, tls["cert"])
    plain_url = bento_server.grpc_url if protocol == Protocol.GRPC else bento_server.http_url
    plain = V2Client(Settings(model_server_url=plain_url, model_protocol=protocol))
    try:
        await client.ready()
        data = circles_png(seed=21)
        result = await client.infer(data, **LOOSE)
        expected = await plain.infer(data, **LOOSE)
    finally:
        await client.close()
        await plain.close()
    assert result.circles == expected.circles and result.model_version
    assert client.where == f"{scheme}://{address}"


@pytest.mark.parametrize(("protocol", "scheme"), TRANSPORTS)
async def test_an_unknown_certificate_is_a_misconfiguration(tls, protocol, scheme):
    """Without the CA bundle the self-signed certificate is refused: no silent fallback."""
    client = tls_client(f"{scheme}://{tls[scheme]}", protocol, None)
    try:
        with pytest.raises(ModelMisconfiguredError, match=r"(?i)tls|certificate|handshake"):
            await client.infer(circles_png(seed=22), **LOOSE)
        with pytest.raises(ModelMisconfiguredError):
            await client.ready()
    finally:
        await client.close()


async def test_plain_http_to_the_tls_port_does_not_work(tls):
    client = V2Client(Settings(model_server_url=f"http://{tls['https']}", model_timeout_s=5))
    assert not client.tls
    try:
        with pytest.raises(InferenceError):
            await client.infer(circles_png(seed=23), **LOOSE)
    finally:
        await client.close()


def test_the_backend_uses_tls_for_an_https_url(tls, tmp_path):
    env = {
        "MODE": "real",
        "DATABASE_URL": "",
        "MODEL_SERVER_URL": f"https://{tls['https']}",
        "MODEL_SERVER_CA_BUNDLE": str(tls["cert"]),
    }
    with running_backend(tmp_path / "ok", env) as server, server.client() as c:
        r = upload(c, circles_png(seed=24))
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "done"
        ready = c.get("/health/ready")
        assert ready.status_code == 200, ready.text

    env.pop("MODEL_SERVER_CA_BUNDLE")
    with running_backend(tmp_path / "no-ca", env) as server, server.client() as c:
        r = upload(c, circles_png(seed=25))
        assert r.status_code == 202 and r.json()["status"] == "failed", r.text
        assert "TLS" in r.json()["error"] and r.json()["attempts"] == 1
        ready = c.get("/health/ready").json()
        assert ready["checks"]["model_server"]["ok"] is False
        assert "TLS" in ready["checks"]["model_server"]["error"]
        assert c.get(API).json()["total"] == 1
