"""A few real training steps run end to end and write loadable, calibrated weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
