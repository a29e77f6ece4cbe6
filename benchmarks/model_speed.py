"""The raw model's speed: one 512x512 image end to end and batched, ONNX Runtime vs torch.

Both runtimes run interleaved in the same process, so a busy machine slows them alike and the
ratio stays meaningful. End to end is preparation, the network, peak decoding, refinement and
scoring at the operating point, as `CircleDetector.detect_arrays` does it for a real request;
the per-stage medians of the ONNX runtime say where the time goes.

    python benchmarks/model_speed.py --threads 2 --repeats 30
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from bentos.circle_detector.model.detector import CircleDetector, prepare
from bentos.circle_detector.training.synthetic import HARD, make_scenes

TARGET_MS = 15.0


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000.0


def stages(detector: CircleDetector, image: np.ndarray) -> dict[str, float]:
    """Milliseconds of each stage of one image."""
    started = time.perf_counter()
    prepared = prepare(image, detector.max_side)
    prepared_at = time.perf_counter()
    rows = detector.candidates([prepared])[0]
    network_at = time.perf_counter()
    detector.finish(prepared, rows, 0.5)
    done = time.perf_counter()
    return {
        "prepare": (prepared_at - started) * 1000,
        "network + peak decoding": (network_at - prepared_at) * 1000,
        "refinement + score": (done - network_at) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="network threads (default 2)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per case (30)")
    parser.add_argument("--batch", type=int, default=8, help="batch size for throughput (8)")
    args = parser.parse_args()

    variants = {name: CircleDetector.load(runtime=name, threads=args.threads)
                for name in ("onnx", "torch")}  # fmt: skip
    images = [s.image for s in make_scenes(99, args.batch, replace(HARD, height=512, width=512))]
    single: dict[str, list[float]] = {k: [] for k in variants}
    batched: dict[str, list[float]] = {k: [] for k in variants}
    parts: list[dict[str, float]] = []
    for det in variants.values():  # warm-up
        det.detect_arrays(images[:1])
        det.detect_arrays(images)
    for i in tqdm(range(args.repeats), desc="timing", unit="round"):
        image = images[i % len(images)]
        for name, det in variants.items():
            single[name].append(timed(det.detect_arrays, [image]))
            batched[name].append(timed(det.detect_arrays, images))
        parts.append(stages(variants["onnx"], image))

    print(f"\n512x512 hard scenes, {args.threads} threads, {args.repeats} interleaved runs each")
    print(f"{'runtime':<8} {'1 image p50 ms':>15} {'p90 ms':>8} {'batch ' + str(args.batch):>10}")
    for name in variants:
        p50 = statistics.median(single[name])
        p90 = float(np.percentile(single[name], 90))
        throughput = args.batch / (statistics.median(batched[name]) / 1000.0)
        print(f"{name:<8} {p50:15.1f} {p90:8.1f} {throughput:8.1f}/s")
    onnx = statistics.median(single["onnx"])
    ratio = onnx / statistics.median(single["torch"])
    print(f"onnx / torch latency ratio: {ratio:.2f}")
    print(f"onnx 1 image p50 {onnx:.1f} ms: {'meets' if onnx <= TARGET_MS else 'misses'} "
          f"the {TARGET_MS:g} ms target")  # fmt: skip
    print("onnx stages, median ms: " + ", ".join(
        f"{k} {statistics.median(p[k] for p in parts):.1f}" for k in parts[0]))  # fmt: skip


if __name__ == "__main__":
    main()
