"""`circle-detector detect`: JSON and table output, and one-line errors for bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bentos.circle_detector.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def disc_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    img = np.full((120, 160), 60, dtype=np.uint8)
    cv2.circle(img, (80 * 16, 60 * 16), 30 * 16, 200, -1, cv2.LINE_AA, 4)
    path = tmp_path_factory.mktemp("img") / "disc.png"
    cv2.imwrite(str(path), img)
    return path


def test_json_output_maps_each_path_to_its_circles(disc_png: Path) -> None:
    result = cli("detect", "--json", str(disc_png), str(disc_png))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == [str(disc_png)]
    (circle,) = data[str(disc_png)]
    assert set(circle) == {"bbox", "center", "radius", "score"}
    assert circle["center"] == pytest.approx([80.0, 60.0], abs=1.0)
    assert circle["radius"] == pytest.approx(30.0, abs=1.0)
    assert circle["bbox"] == pytest.approx([50.0, 30.0, 110.0, 90.0], abs=1.5)
    assert 0.5 <= circle["score"] <= 1.0


def test_table_output_and_threshold(disc_png: Path) -> None:
    result = cli("detect", str(disc_png))
    assert result.returncode == 0 and "1 circle(s)" in result.stdout
    result = cli("detect", "--score-threshold", "1", str(disc_png))
    assert result.returncode == 0 and "0 circle(s)" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        (b"", "empty"),
        (b"hello, I am text", "not a recognised image"),
        ("truncated", "truncated or corrupt"),
    ],
    ids=["missing", "empty", "text", "truncated"],
)
def test_bad_files_get_one_line_errors(
    tmp_path: Path, disc_png: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "bad.png"
    if content == "truncated":
        path.write_bytes(disc_png.read_bytes()[:200])
    elif content is not None:
        path.write_bytes(content)
    result = cli("detect", "--json", str(path), str(disc_png))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert list(json.loads(result.stdout)) == [str(disc_png)]  # the good file still ran


@pytest.mark.parametrize(
    "args", [["--score-threshold", "2"], ["--score-threshold", "x"], ["--max-detections", "0"]]
)
def test_bad_arguments_exit_2(disc_png: Path, args: list[str]) -> None:
    result = cli("detect", *args, str(disc_png))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_unloadable_weights_are_an_error(tmp_path: Path, disc_png: Path) -> None:
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"not torch")
    result = cli("detect", "--weights", str(bad), str(disc_png))
    assert result.returncode == 2 and "cannot load the model" in result.stderr
    assert "not a circle-detector checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_both_runtimes_and_a_model_folder(tmp_path: Path, disc_png: Path) -> None:
    from bentos.circle_detector.model.artifacts import MODEL_DIR

    outputs = [
        json.loads(cli("detect", "--json", *args, str(disc_png)).stdout)[str(disc_png)]
        for args in (["--runtime", "torch"], ["--runtime", "onnx", "--weights", str(MODEL_DIR)])
    ]
    assert len(outputs[0]) == len(outputs[1]) == 1
    assert outputs[0][0]["center"] == pytest.approx(outputs[1][0]["center"], abs=0.01)
