"""The raw model's speed: one 512x512 image end to end and batched, eager vs TorchScript.

Both variants run interleaved in the same process, so a busy machine slows them alike and the
ratio stays meaningful. End to end is forward + decode + refinement + calibration, as
`CircleDetector.detect_arrays` does it for a real request.

    python benchmarks/model_speed.py --threads 2 --repeats 30
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import torch
from tqdm import tqdm

from bentos.circle_detector.model.detector import CircleDetector, prepare
from bentos.circle_detector.training.synthetic import HARD, make_scenes


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per case (30)")
    parser.add_argument("--batch", type=int, default=8, help="batch size for throughput (8)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    eager = CircleDetector.load()
    images = [s.image for s in make_scenes(99, args.batch, replace(HARD, height=512, width=512))]
    example = torch.from_numpy(prepare(images[0]).tensor)[None, None]
    with torch.inference_mode():
        traced_net = torch.jit.freeze(torch.jit.trace(eager.net.eval(), example).eval())
    scripted = CircleDetector(traced_net, eager.info, eager.scorer)
    variants = {"eager": eager, "torchscript": scripted}

    single: dict[str, list[float]] = {k: [] for k in variants}
    batched: dict[str, list[float]] = {k: [] for k in variants}
    for det in variants.values():  # warm-up
        det.detect_arrays(images[:1])
        det.detect_arrays(images)
    for i in tqdm(range(args.repeats), desc="timing", unit="round"):
        for name, det in variants.items():
            single[name].append(timed(det.detect_arrays, [images[i % len(images)]]))
            batched[name].append(timed(det.detect_arrays, images))

    print(f"\n512x512, {args.threads} torch threads, {args.repeats} interleaved runs each")
    print(f"{'variant':<12} {'1 image p50 ms':>15} {'p90 ms':>8} {'batch ' + str(args.batch):>10}")
    for name in variants:
        p50 = statistics.median(single[name])
        p90 = float(np.percentile(single[name], 90))
        throughput = args.batch / (statistics.median(batched[name]) / 1000.0)
        print(f"{name:<12} {p50:15.1f} {p90:8.1f} {throughput:8.1f}/s")
    ratio = statistics.median(single["torchscript"]) / statistics.median(single["eager"])
    print(f"torchscript / eager latency ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
