"""Turn one local suite run (`results.json`) into CSVs, plots and a Markdown summary.

Also a command, to re-render a results folder after editing this file:

    python benchmarks/report.py benchmarks/results/local-...
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

PLOTS = ("latency.png", "throughput.png", "batch_histogram.png")


def per_bucket(hist: dict[str, Any]) -> list[tuple[str, float]]:
    """Prometheus cumulative `le` buckets -> (label, count) per bucket: `1`, `2`, `3-4`, ..."""
    buckets = sorted((float(k), v) for k, v in hist.get("buckets", {}).items())
    out, prev_le, prev_count = [], 0.0, 0.0
    for le, cumulative in buckets:
        lo = math.floor(prev_le) + 1
        label = f"{le:g}" if lo >= le else f"{lo}-{le:g}"
        if math.isinf(le):
            label = f">{prev_le:g}"
        out.append((label, max(0.0, cumulative - prev_count)))
        prev_le, prev_count = le, cumulative
    return out


def aligned(hists: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same `le` buckets for every histogram (servers with other batch limits have others).

    A missing bucket's cumulative count is that of the nearest smaller bucket present.
    """
    keys = sorted({float(k) for h in hists.values() for k in h.get("buckets", {})})
    out = {}
    for name, h in hists.items():
        own = sorted((float(k), v) for k, v in h.get("buckets", {}).items())
        buckets = {le: max((v for k, v in own if k <= le), default=0.0) for le in keys}
        out[name] = {**h, "buckets": buckets}
    return out


def _merge(hists: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"buckets": {}, "sum": 0.0, "count": 0.0}
    for h in hists:
        for k, v in h.get("buckets", {}).items():
            merged["buckets"][float(k)] = merged["buckets"].get(float(k), 0.0) + v
        merged["sum"] += h.get("sum", 0.0)
        merged["count"] += h.get("count", 0.0)
    return merged


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _spread(values: list[float]) -> str:
    return (
        f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, "
        f"n={len(values)})"
    )


def _curve(results: dict[str, Any], target: str, users: int) -> dict[str, Any] | None:
    return next(
        (r for r in results["curves"] if r["target"] == target and r["users"] == users), None
    )


def headline(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, what it means) rows; every ratio from phases measured side by side."""
    rounds = results["rounds"]
    top = rounds[0]["on"]["users"]
    off = results.get("batching_off_max_batch_size", 1)
    off_name = "off" if off == 1 else f"off (max batch {off}, the Bento's floor)"
    overhead = statistics.median(_ratio(r["on"]["rps"], r["raw_images_per_s"]) for r in rounds)
    batching = statistics.median(_ratio(r["on"]["rps"], r["off"]["rps"]) for r in rounds)
    p95 = statistics.median(_ratio(r["off"]["p95_ms"], r["on"]["p95_ms"]) for r in rounds)
    mean_batch = statistics.median(r["on"]["mean_batch"] for r in rounds)
    raw_batch = rounds[0]["raw_batch"]
    rows = [
        (
            f"serving overhead: V2 HTTP / raw model, throughput at {top} users",
            f"{overhead:.2f}",
            f"images/s through the Bento (Locust, tritonclient, binary tensors) over images/s of "
            f"decode + `detect_arrays` in-process at the batch size the server reached "
            f"(~{raw_batch}; threads {rounds[0].get('raw_threads', '?')}, the faster "
            f"of default and 1); 1.0 means serving costs nothing, median of {len(rounds)} rounds.",
        ),
        (
            f"adaptive batching on / {off_name}: throughput at {top} users",
            f"{batching:.2f}",
            f"V2 HTTP requests/s with batching over without, same load; the batching Bento's "
            f"mean batch was {mean_batch:.1f} images (median of the rounds' means).",
        ),
        (
            f"adaptive batching {off_name} / on: p95 latency at {top} users",
            f"{p95:.2f}",
            "above 1: batching also shortens the slow tail under load.",
        ),
    ]
    one_v2, one_be = _curve(results, "v2_http", 1), _curve(results, "backend", 1)
    if one_v2:
        raw1_ms = 1000.0 / statistics.median(r["raw_images_per_s_batch1"] for r in rounds)
        rows.append(
            (
                "serving latency: V2 HTTP / raw model, mean at 1 user",
                f"{_ratio(one_v2['mean_ms'], raw1_ms):.2f}",
                f"{one_v2['mean_ms']:.0f} ms per request through the Bento against "
                f"{raw1_ms:.0f} ms per image in-process (batch 1): what one user pays for HTTP, "
                "decoding in the server and the batcher's hop.",
            )
        )
    if one_v2 and one_be:
        rows.append(
            (
                "backend upload / direct V2: mean latency at 1 user",
                f"{_ratio(one_be['mean_ms'], one_v2['mean_ms']):.2f}",
                f"{one_be['mean_ms']:.0f} ms for `POST /api/v1/images/` (checks, storage, SQLite "
                f"rows, the V2 call) against {one_v2['mean_ms']:.0f} ms for the V2 call alone: "
                f"the backend adds {one_be['mean_ms'] - one_v2['mean_ms']:+.0f} ms.",
            )
        )
    top_v2, top_be = _curve(results, "v2_http", top), _curve(results, "backend", top)
    if top_v2 and top_be:
        rows.append(
            (
                f"backend upload / direct V2: throughput at {top} users",
                f"{_ratio(top_be['rps'], top_v2['rps']):.2f}",
                "uploads/s through the backend over inferences/s straight to the Bento; the "
                "backend shares the same 2 cores.",
            )
        )
    grpc = results.get("grpc")
    if grpc:
        http = statistics.median(r["on"]["rps"] for r in rounds)
        rows.append(
            (
                f"V2 gRPC / V2 HTTP: throughput at {top} users",
                f"{_ratio(grpc['rps'], http):.2f}",
                "the same inference over the Bento's gRPC server (tritonclient gRPC).",
            )
        )
    cold = results.get("cold_start")
    if cold:
        rows.append(
            (
                "Bento cold start (`bentoml serve` -> first answer)",
                _spread(cold["bento_first_answer_s"]),
                "process spawn to the first 200 of a V2 inference fired at once and retried "
                "every 20 ms (model load, warm-up and BentoML's start-up).",
            )
        )
        rows.append(
            (
                "backend time to ready",
                _spread(cold["backend"]["ready_s"]),
                "`python -m backend` spawn (fresh SQLite, migrations) to the first 200 of "
                "`/health/ready`, which also checks the model server.",
            )
        )
    failures = sum(r["failures"] for r in all_runs(results))
    requests = sum(r["requests"] for r in all_runs(results))
    rows.append(
        (
            "failed requests",
            f"{failures} of {requests}",
            "every Locust request of the run, all targets; any failure is a bug.",
        )
    )
    return rows


def all_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs = list(results["curves"])
    for r in results["rounds"]:
        runs += [r["on"], r["off"]]
    if results.get("grpc"):
        runs.append(results["grpc"])
    return runs


def write_csvs(out: Path, results: dict[str, Any]) -> None:
    fields = ["target", "users", "requests", "failures", "rps", "mean_ms", "p50_ms", "p95_ms",
              "p99_ms", "max_ms"]  # fmt: skip
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(results["curves"])
        if results.get("grpc"):
            w.writerow(results["grpc"])
    with open(out / "rounds.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "on_rps", "off_rps", "on_p50_ms", "off_p50_ms", "on_p95_ms",
                    "off_p95_ms", "on_mean_batch", "off_mean_batch", "raw_batch",
                    "raw_images_per_s", "raw_images_per_s_batch1"])  # fmt: skip
        for k, r in enumerate(results["rounds"]):
            on, off = r["on"], r["off"]
            w.writerow([k, on["rps"], off["rps"], on["p50_ms"], off["p50_ms"], on["p95_ms"],
                        off["p95_ms"], on["mean_batch"], off["mean_batch"], r["raw_batch"],
                        r["raw_images_per_s"], r["raw_images_per_s_batch1"]])  # fmt: skip
    with open(out / "batch_histogram.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "batch_size", "batches"])
        for phase, hist in histograms(results).items():
            for label, count in per_bucket(hist):
                w.writerow([phase, label, int(count)])
    cold = results.get("cold_start")
    if cold:
        with open(out / "cold_start.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["what", "run", "seconds"])
            series = {
                "bento_first_answer": cold["bento_first_answer_s"],
                "backend_live": cold["backend"]["live_s"],
                "backend_ready": cold["backend"]["ready_s"],
            }
            for name, values in series.items():
                for k, v in enumerate(values):
                    w.writerow([name, k, v])


def histograms(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Batch sizes of the round phases (all rounds summed), batching on and off."""
    return {
        "batching on": _merge([r["on"]["batch_histogram"] for r in results["rounds"]]),
        "batching off": _merge([r["off"]["batch_histogram"] for r in results["rounds"]]),
    }


def plot(out: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"v2_http": "V2 HTTP (Bento)", "backend": "backend upload"}
    colors = {"v2_http": "tab:blue", "backend": "tab:orange"}

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=80)
    for target, name in names.items():
        rows = sorted(
            (r for r in results["curves"] if r["target"] == target), key=lambda r: r["users"]
        )
        users = [r["users"] for r in rows]
        for key, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
            ax.plot(users, [r[key] for r in rows], style, marker="o", color=colors[target],
                    label=f"{name} {key[:-3]}")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="concurrent users", ylabel="latency (ms)",
           title="Latency percentiles against users")  # fmt: skip
    ax.set_xticks(sorted({r["users"] for r in results["curves"]}))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "latency.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=80)
    for target, name in names.items():
        rows = sorted(
            (r for r in results["curves"] if r["target"] == target), key=lambda r: r["users"]
        )
        ax.plot([r["users"] for r in rows], [r["rps"] for r in rows], marker="o",
                color=colors[target], label=name)  # fmt: skip
    rounds = results["rounds"]
    raw = statistics.median(r["raw_images_per_s"] for r in rounds)
    raw1 = statistics.median(r["raw_images_per_s_batch1"] for r in rounds)
    ax.axhline(raw, color="tab:green", ls="--", label=f"raw model, batch {rounds[0]['raw_batch']}")
    ax.axhline(raw1, color="tab:green", ls=":", label="raw model, batch 1")
    top = rounds[0]["on"]["users"]
    off = statistics.median(r["off"]["rps"] for r in rounds)
    ax.plot([top], [off], "x", color="tab:red", ms=9, label="V2 HTTP, batching off")
    if results.get("grpc"):
        ax.plot([top], [results["grpc"]["rps"]], "s", color="tab:purple", label="V2 gRPC")
    ax.set(xscale="log", xlabel="concurrent users", ylabel="requests (images) / s",
           title="Throughput against users")  # fmt: skip
    ax.set_xticks(sorted({r["users"] for r in results["curves"]}))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "throughput.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
    hists = aligned(histograms(results))
    width = 0.4
    for k, (phase, hist) in enumerate(hists.items()):
        buckets = per_bucket(hist)
        xs = [i + (k - 0.5) * width for i in range(len(buckets))]
        ax.bar(xs, [c for _, c in buckets], width, label=phase)
        ax.set_xticks(range(len(buckets)), [b for b, _ in buckets])
    ax.set(xlabel="images per batch (circle_detector_batch_size, from /metrics)",
           ylabel="batches", title=f"Batch sizes at {top} users")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "batch_histogram.png")
    plt.close(fig)


def summary(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m = meta["machine"]
    lines = [
        "# Local benchmark suite",
        "",
        f"Run {meta['started_utc']} to {meta.get('finished_utc', '?')} "
        f"({meta.get('wall_s', '?')} s), git {m['git_commit']}.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average "
        f"{_load(m['load_average_at_start'])} at start, {_load(m.get('load_average_at_end'))} "
        f"at end; Python {m['python']}, ONNX Runtime {m.get('onnxruntime', '?')}, "
        f"BentoML {m['bentoml']}.",
        "",
        f"Command: `{meta['command']}`",
        "",
        "## Headline (ratios measured side by side in this run)",
        "",
        "| figure | value | what it means |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | **{b}** | {c} |" for a, b, c in headline(results)]
    lines += [
        "",
        "## Locust runs",
        "",
        "| phase | target | users | requests | failures | req/s | mean ms | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    phases = [("curve", r) for r in results["curves"]]
    for k, r in enumerate(results["rounds"]):
        phases += [(f"round {k} batching on", r["on"]), (f"round {k} batching off", r["off"])]
    if results.get("grpc"):
        phases.append(("gRPC", results["grpc"]))
    for phase, r in phases:
        lines.append(
            f"| {phase} | {r['target']} | {r['users']} | {r['requests']} | {r['failures']} | "
            f"{r['rps']:.1f} | {r['mean_ms']:.0f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
            f"{r['p99_ms']:.0f} |"
        )
    lines += ["", "## Raw in-process model (decode + `detect_arrays`, one caller)", ""]
    for k, r in enumerate(results["rounds"]):
        lines.append(
            f"- round {k}: {r['raw_images_per_s']:.1f} images/s at batch {r['raw_batch']}, "
            f"{r['raw_images_per_s_batch1']:.1f} images/s at batch 1"
        )
    lines += ["", "## Batch sizes (from the Bento's `/metrics`)", ""]
    for phase, hist in histograms(results).items():
        cells = ", ".join(f"{label}: {int(c)}" for label, c in per_bucket(hist) if c)
        mean = hist["sum"] / hist["count"] if hist["count"] else float("nan")
        lines.append(f"- {phase}: mean {mean:.2f} images per batch; {cells}")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in PLOTS]
    return "\n".join(lines) + "\n"


def _load(value: Any) -> str:
    return "?" if not value else "/".join(f"{float(x):.1f}" for x in value)


def write(out: Path, results: dict[str, Any]) -> None:
    """CSVs, plots and summary.md into `out`."""
    write_csvs(out, results)
    plot(out, results)
    (out / "summary.md").write_text(summary(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a results folder with results.json")
    args = parser.parse_args(argv)
    write(args.folder, json.loads((args.folder / "results.json").read_text()))
    print((args.folder / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
