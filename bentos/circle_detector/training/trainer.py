"""The training loop, the losses and the score calibration."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..model.checkpoint import save_checkpoint
from ..model.detector import WEIGHTS_PATH, CircleDetector, ModelInfo, prepare
from ..model.network import CircleNet
from ..model.runtimes import TorchNetwork
from ..model.scoring import Scorer
from .resume import load_state, restore, save_state
from .scoring_fit import fit_scorer
from .synthetic import CALIBRATION, CLEAN, PLAIN, TRAIN, Scene, make_scenes
from .targets import build_targets
from .training_log import plot_log, write_log

CALIBRATION_SEED = 1_000_003
CALIBRATION_SCENES = 2000
#: Shares of the calibration scenes that are clean renderings (`synthetic.CLEAN`) and plain
#: drawings (`synthetic.PLAIN`); the rest are `synthetic.CALIBRATION`'s.
CLEAN_SHARE = 0.2
PLAIN_SHARE = 0.2


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 26000
    batch_size: int = 16
    scenes: int = 16000
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    version: str = "6"
    width: int = 16
    head_channels: int = 32
    fine_channels: int = 16
    calibration_scenes: int = CALIBRATION_SCENES
    ema_decay: float = 0.998
    checkpoint_every: int = 250


#: `circle-detector train --quick`: a smoke run of a few minutes, same code, same outputs.
QUICK = TrainConfig(steps=300, scenes=400, calibration_scenes=200, version="0")
LOG_EVERY = 25


def augment(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flips and transpose of a scene, labels moved with it."""
    image, circles = scene.image, scene.circles.copy()
    h, w = image.shape
    if h == w and rng.random() < 0.5:
        image = image.T
        circles[:, [0, 1]] = circles[:, [1, 0]]
    if rng.random() < 0.5:
        image = image[:, ::-1]
        circles[:, 0] = w - 1 - circles[:, 0]
    if rng.random() < 0.5:
        image = image[::-1, :]
        circles[:, 1] = h - 1 - circles[:, 1]
    return np.ascontiguousarray(image), circles


def make_batch(
    scenes: list[Scene], rng: np.random.Generator, device: str
) -> dict[str, torch.Tensor]:
    images, heat, weight, index, offset, log_r = [], [], [], [], [], []
    for b, scene in enumerate(scenes):
        image, circles = augment(scene, rng)
        images.append(prepare(image).tensor)
        t = build_targets(image.shape, circles, scene.difficult)
        cells = t.heatmap.size
        heat.append(t.heatmap)
        weight.append(t.weight)
        index.append(t.index + b * cells)
        offset.append(t.offset)
        log_r.append(t.log_radius)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    image = as_t(np.stack(images)[:, None]).contiguous(memory_format=torch.channels_last)
    return {
        "image": image,
        "heat": as_t(np.stack(heat)[:, None]),
        "weight": as_t(np.stack(weight)[:, None]),
        "index": as_t(np.concatenate(index)),
        "offset": as_t(np.concatenate(offset)),
        "log_radius": as_t(np.concatenate(log_r)),
    }


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    pos = target.eq(1.0).float()
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = log_p.exp()
    pos_loss = -(log_p * (1 - p) ** 2 * pos).sum()
    neg_loss = -(log_not_p * p**2 * (1 - target) ** 4 * (1 - pos) * weight).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def compute_loss(
    net: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    heat, offset, log_radius = net(batch["image"])
    loss_heat = focal_loss(heat, batch["heat"], batch["weight"])
    n = len(batch["index"])
    if n:
        off = offset.permute(0, 2, 3, 1).reshape(-1, 2)[batch["index"]]
        rad = log_radius.reshape(-1)[batch["index"]]
        loss_off = F.l1_loss(off, batch["offset"])
        loss_rad = F.smooth_l1_loss(rad, batch["log_radius"], beta=0.1)
    else:
        loss_off = loss_rad = heat.sum() * 0.0
    total = loss_heat + loss_off + 2.0 * loss_rad
    parts = {"heat": loss_heat.item(), "off": loss_off.item(), "rad": loss_rad.item()}
    return total, parts


def lr_at(step: int, steps: int, peak: float) -> float:
    warmup = max(1, min(100, steps // 20))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def calibrate(detector: CircleDetector, config: TrainConfig) -> tuple[Scorer, dict]:
    """Fit the score on scenes unlike training's defaults (larger, busier, more damaged, and
    shares of clean renderings and plain drawings), so that it keeps its meaning on images the
    network was not fitted to. Seeded on its own: the same network always gets the same score."""
    clean = round(CLEAN_SHARE * config.calibration_scenes)
    plain = round(PLAIN_SHARE * config.calibration_scenes)
    mix = [
        (config.calibration_scenes - clean - plain, CALIBRATION, "calibration scenes"),
        (clean, CLEAN, "clean scenes"),
        (plain, PLAIN, "plain scenes"),
    ]
    scenes = [
        scene
        for offset, (count, kind, label) in enumerate(mix)
        for scene in make_scenes(
            CALIBRATION_SEED + offset, count, kind, progress=label, processes=config.threads
        )
    ]
    return fit_scorer(detector, scenes, config.seed)


def train_and_save(
    config: TrainConfig,
    output: Path | None = None,
    checkpoint_dir: Path | None = None,
    report_dir: Path | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """Train (resuming from `checkpoint_dir` when it holds this run's state), calibrate, and
    write the weights, the training log and its plot; returns a summary."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    path = Path(output or WEIGHTS_PATH)
    checkpoint_dir = Path(checkpoint_dir or path.with_name(f"{path.stem}.checkpoint"))
    report_dir = Path(report_dir or path.parent)
    started = time.perf_counter()
    scenes = make_scenes(
        config.seed, config.scenes, TRAIN, progress="scenes", processes=config.threads
    )
    generated = time.perf_counter()
    net = CircleNet(config.width, config.head_channels, config.fine_channels).to(config.device)
    # NHWC runs the small convolutions about 1.35x faster on CPU (oneDNN) than NCHW.
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # The weights kept are an exponential moving average over the last few hundred steps.
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    first, log = 0, []
    state = None if fresh else load_state(checkpoint_dir, asdict(config))
    if state is not None:
        first, log = restore(state, net, ema, opt, rng)
    net.train()
    progress = tqdm(
        range(first, config.steps), desc="train", unit="step", initial=first, total=config.steps
    )
    running: dict[str, float] = dict(log[-1]) if log else {}
    seconds = log[-1]["seconds"] if log else 0.0
    tick = time.perf_counter()
    for step in progress:
        lr = lr_at(step, config.steps, config.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        chosen = rng.choice(len(scenes), config.batch_size, replace=False)
        batch = make_batch([scenes[i] for i in chosen], rng, config.device)
        loss, parts = compute_loss(net, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        ema.update_parameters(net)
        running = {k: 0.95 * running.get(k, v) + 0.05 * v for k, v in parts.items()}
        progress.set_postfix({k: f"{v:.3f}" for k, v in running.items()})
        done = step + 1
        if done % LOG_EVERY == 0 or done == config.steps:
            now = time.perf_counter()
            seconds, tick = seconds + now - tick, now
            log.append({"step": done, "lr": lr, **running, "seconds": round(seconds, 1)})
        if done % config.checkpoint_every == 0 or done == config.steps:
            save_state(checkpoint_dir, asdict(config), done, net, ema, opt, rng, log)
    trained = time.perf_counter()
    net = ema.module.cpu().eval()
    info = ModelInfo(
        version=config.version,
        config={
            "width": config.width,
            "head_channels": config.head_channels,
            "fine_channels": config.fine_channels,
        },
    )
    detector = CircleDetector(TorchNetwork(net), info)
    detector.scorer, calibration_stats = calibrate(detector, config)
    finished = time.perf_counter()
    detector.info.metadata = {
        "training": asdict(config),
        "calibration": calibration_stats,
        "seconds": {
            "generate": round(generated - started, 1),
            "train": round(seconds, 1),
            "calibrate": round(finished - trained, 1),
            "total": round(finished - started - (trained - generated) + seconds, 1),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, net, detector.info, detector.scorer)
    written = [write_log(log, report_dir / "training_log.csv")]
    if log:
        written.append(plot_log(log, report_dir / "training_loss.png"))
    return {
        "weights": str(path),
        "loss": running,
        "resumed_at": first,
        "log": [str(p) for p in written],
        **detector.info.metadata,
    }
