"""One revision's timing for `model_versions.py`: a JSON line {image: [median ms, found]}.

Runs in its own process with ROOT first on `sys.path`, so `bentos` is that revision's code and
its weights, whatever is installed. Only APIs every revision has are used: `CircleDetector.load`
and `detect_arrays`.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a checkout of the revision")
    parser.add_argument("corpus", type=Path, help="pickled [(name, encoded bytes)]")
    parser.add_argument("repeats", type=int, help="timed runs per image")
    parser.add_argument("threads", type=int, help="torch threads")
    args = parser.parse_args()
    root = args.root
    sys.path.insert(0, str(root))
    import cv2
    import numpy as np
    import torch

    from bentos.circle_detector.model import detector

    if not Path(detector.__file__).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"imported {detector.__file__}, not the code under {root}")
    torch.set_num_threads(args.threads)
    model = detector.CircleDetector.load(
        root / "bentos/circle_detector/model/weights/circle_detector.pt"
    )
    images = [
        (name, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
        for name, data in pickle.loads(args.corpus.read_bytes())
    ]
    for _, image in images:  # warm-up
        model.detect_arrays([image])
    out = {}
    for name, image in images:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            found = model.detect_arrays([image])[0]
            times.append((time.perf_counter() - start) * 1000.0)
        out[name] = [statistics.median(times), len(found)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
