"""The training log: running losses every few steps, as CSV and as a plot committed with the
weights so that a reader sees how the run converged."""

from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ("step", "lr", "heat", "off", "rad", "seconds")


def write_log(rows: list[dict[str, float]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in FIELDS})
    return path


def plot_log(rows: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1))
    for name, label in (("heat", "centre heatmap (focal)"), ("off", "offset (L1)")):
        loss_ax.plot(steps, [r[name] for r in rows], label=label)
    loss_ax.plot(steps, [r["rad"] for r in rows], label="log radius (smooth L1)")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("running loss")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    lr_ax.plot(steps, [r["lr"] for r in rows], color="grey")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
