"""A few real training steps run end to end and write loadable, calibrated weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bentos.circle_detector.model.detector import CircleDetector
from bentos.circle_detector.training.trainer import TrainConfig, lr_at, train_and_save


def test_lr_schedule_warms_up_and_decays() -> None:
    lrs = [lr_at(s, 1000, 1.0) for s in range(1000)]
    assert lrs[0] < lrs[49] == max(lrs) and lrs[-1] < 0.05


def test_tiny_training_run_writes_weights(tmp_path: Path) -> None:
    config = TrainConfig(steps=3, batch_size=2, scenes=4, calibration_scenes=4, threads=1)
    summary = train_and_save(config, tmp_path / "w.pt")
    detector = CircleDetector.load(tmp_path / "w.pt")
    assert detector.info.metadata["training"]["steps"] == 3
    assert set(summary["seconds"]) == {"generate", "train", "calibrate", "total"}
    assert all(np.isfinite(v).all() for v in detector.scorer.state_dict().values())
    image = np.zeros((64, 64), dtype=np.uint8)
    assert isinstance(detector.detect_arrays([image], score_threshold=0.0)[0], np.ndarray)


def _tiny() -> TrainConfig:
    return TrainConfig(
        steps=4, batch_size=2, scenes=4, calibration_scenes=4, threads=1, checkpoint_every=2
    )


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C after two steps, run again: the run continues at step 2 and ends where an
    uninterrupted run ends."""
    import torch

    from bentos.circle_detector.training import trainer

    whole = train_and_save(_tiny(), tmp_path / "whole.pt", tmp_path / "ckpt-whole", tmp_path)
    assert whole["resumed_at"] == 0
    real_loss, calls = trainer.compute_loss, []

    def interrupted(net: torch.nn.Module, batch: dict) -> tuple:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_loss(net, batch)

    monkeypatch.setattr(trainer, "compute_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_and_save(_tiny(), tmp_path / "cut.pt", tmp_path / "ckpt-cut", tmp_path)
    monkeypatch.setattr(trainer, "compute_loss", real_loss)
    assert not (tmp_path / "cut.pt").exists()
    resumed = train_and_save(_tiny(), tmp_path / "cut.pt", tmp_path / "ckpt-cut", tmp_path)
    assert resumed["resumed_at"] == 2
    a = torch.load(tmp_path / "whole.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
    rows = (tmp_path / "training_log.csv").read_text().splitlines()
    assert rows[0] == "step,lr,heat,off,rad,seconds" and rows[-1].startswith("4,")
    assert (tmp_path / "training_loss.png").stat().st_size > 1000


def test_state_of_other_settings_is_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    from bentos.circle_detector.training.resume import ResumeMismatch

    train_and_save(_tiny(), tmp_path / "w.pt", tmp_path / "ckpt", tmp_path)
    with pytest.raises(ResumeMismatch, match="lr"):
        train_and_save(replace(_tiny(), lr=1e-3), tmp_path / "w.pt", tmp_path / "ckpt", tmp_path)
    fresh = train_and_save(
        replace(_tiny(), lr=1e-3), tmp_path / "w.pt", tmp_path / "ckpt", tmp_path, fresh=True
    )
    assert fresh["resumed_at"] == 0


KILLED_RUN = """
import sys
from pathlib import Path
from bentos.circle_detector.training.trainer import TrainConfig, train_and_save
root = Path(sys.argv[1])
config = TrainConfig(steps=40, batch_size=2, scenes=4, calibration_scenes=4, threads=1,
                     checkpoint_every=2)
train_and_save(config, root / "cut.pt", root / "ckpt", root)
"""


@pytest.mark.parametrize("delay_s", [0.0, 0.15])
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path, delay_s) -> None:
    """SIGKILL at an arbitrary moment after the first checkpoint (mid-step or mid-save): no
    weights file, and the next run resumes from the last whole checkpoint to the weights of an
    uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time
    from dataclasses import replace

    import torch

    from bentos.circle_detector.training.resume import STATE_FILE
    from tests.servers import REPO_ROOT

    config = replace(_tiny(), steps=40)
    train_and_save(config, tmp_path / "whole.pt", tmp_path / "ckpt-whole", tmp_path / "r")
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path)], cwd=REPO_ROOT)
    state = tmp_path / "ckpt" / STATE_FILE
    deadline = time.monotonic() + 120
    while not state.exists():
        assert run.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(delay_s)
    run.send_signal(signal.SIGKILL)
    assert run.wait(30) == -signal.SIGKILL
    assert not (tmp_path / "cut.pt").exists()
    resumed = train_and_save(config, tmp_path / "cut.pt", tmp_path / "ckpt", tmp_path)
    assert 2 <= resumed["resumed_at"] < 40
    a = torch.load(tmp_path / "whole.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut.pt", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)
