"""Every `circle-detector` command has --help; evaluate and train refuse bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bentos.circle_detector.cli import COMMANDS
from bentos.circle_detector.model.detector import CircleDetector
from bentos.circle_detector.training.evaluation import NOTES_HEADING


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bentos.circle_detector.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_top_level_help_lists_every_command() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("train", ["--steps", "0"]),
        ("train", ["--steps", "many"]),
        ("evaluate", ["--scenes", "0"]),
        ("nonsense", []),
    ],
)
def test_bad_arguments_are_refused(command: str, args: list[str]) -> None:
    result = cli(command, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_evaluate_writes_metrics_plots_and_card(tmp_path: Path) -> None:
    card = tmp_path / "card.md"
    version = CircleDetector.load().info.version
    notes = f"{NOTES_HEADING}\n\n- written by hand\n"
    card.write_text(f"# Model card: circle_detector, version {version}\n\nold figures\n\n{notes}")
    result = cli("evaluate", "--quick", "--output-dir", str(tmp_path), "--model-card", str(card))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hough-gradient-alt" in result.stdout and "coins" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    sets = {"hard-synthetic", "independent", "negative-scenes", "negative-photos", "coins"}
    assert set(metrics) == sets | {"analysis"}
    assert metrics["coins"]["circle-detector"]["true_positives"] == 24
    for png in ("pr_curves.png", "reliability.png", "coins_overlay.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Evaluation" in card.read_text()
    assert "(./pr_curves.png)" in card.read_text()  # the plots, linked relative to the card
    assert card.read_text().endswith("\n\n" + notes) and "old figures" not in card.read_text()
