"""The raw model of several git revisions, side by side, on the benchmarks' image mix.

Each revision (its code and its committed weights) is checked out in a temporary git worktree
and timed in a fresh process of its own; revisions alternate round by round, so a busy machine
slows them alike. Every revision gets the same encoded images, decoded once per process and
timed in `CircleDetector.detect_arrays` (network, decode, refinement, scoring; file decoding
excluded). `.` is the repository's work tree as it is now.

    python benchmarks/model_versions.py a9bffe7 HEAD .
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.corpus import samples  # noqa: E402
from bentos.circle_detector.commands.detect import positive_int  # noqa: E402

WORKER = Path(__file__).with_name("model_versions_worker.py")


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not sizes or min(sizes) < 64 or max(sizes) > 4096:
        raise argparse.ArgumentTypeError(f"sides must be 64 to 4096 px: {text!r}")
    return sizes


def resolve(repo: Path, ref: str) -> str:
    """The commit a revision names; raises ValueError if git does not know it."""
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ValueError(f"not a git revision of {repo}: {ref!r}")
    return done.stdout.strip()


def checkout(stack: ExitStack, repo: Path, ref: str, path: Path) -> Path:
    """A worktree of `ref` at `path`, removed when `stack` closes; `.` is the repo itself."""
    if ref == ".":
        return repo
    git = ["git", "-C", str(repo), "worktree"]
    subprocess.run([*git, "add", "--detach", str(path), resolve(repo, ref)], check=True,
                   capture_output=True)  # fmt: skip
    stack.callback(subprocess.run, [*git, "remove", "--force", str(path)], capture_output=True)
    return path


def time_once(root: Path, corpus: Path, repeats: int, threads: int) -> dict[str, list[float]]:
    """{image name: [median ms, detections]} from one worker process on `root`'s code."""
    done = subprocess.run(
        [sys.executable, str(WORKER), str(root), str(corpus), str(repeats), str(threads)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"timing {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(refs: list[str], runs: dict[str, list[dict[str, list[float]]]]) -> str:
    """Markdown: per image, each revision's median ms over rounds (detections), ratio to the
    first revision; then the mean."""
    names = list(runs[refs[0]][0])
    head = "| image | " + " | ".join(f"`{r}` ms (found)" for r in refs)
    head += "".join(f" | `{r}` / `{refs[0]}`" for r in refs[1:]) + " |"
    lines = [head, "|---" * 2 * len(refs) + "|"]
    means: dict[str, list[float]] = {r: [] for r in refs}
    for name in names:
        ms = {r: statistics.median(run[name][0] for run in runs[r]) for r in refs}
        found = {r: int(runs[r][-1][name][1]) for r in refs}
        for r in refs:
            means[r].append(ms[r])
        cells = [f"{ms[r]:.1f} ({found[r]})" for r in refs]
        cells += [f"{ms[r] / ms[refs[0]]:.2f}" for r in refs[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    mean = {r: statistics.fmean(v) for r, v in means.items()}
    cells = [f"**{mean[r]:.1f}**" for r in refs] + [
        f"**{mean[r] / mean[refs[0]]:.2f}**" for r in refs[1:]
    ]
    lines.append("| mean | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="+", help="git revisions to compare, `.` for the work tree")
    parser.add_argument("--rounds", type=positive_int, default=2, help="alternating rounds (2)")
    parser.add_argument("--repeats", type=positive_int, default=7, help="timed runs per image (7)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads (2)")
    parser.add_argument("--sizes", type=parse_sizes, default=(256, 512, 1024),
                        help="synthetic image sides, comma-separated (256,512,1024)")  # fmt: skip
    parser.add_argument(
        "--repo", type=Path, default=REPO_ROOT, help="git repository of the revisions (this one)"
    )
    args = parser.parse_args(argv)
    if not args.repo.is_dir():
        parser.error(f"no such directory: {args.repo}")
    for ref in args.refs:
        if ref != ".":
            try:
                resolve(args.repo, ref)
            except ValueError as error:
                parser.error(str(error))
    if len(set(args.refs)) != len(args.refs):
        parser.error("each revision once")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:  # worktrees go first
        work = Path(tmp)
        corpus = work / "corpus.pkl"
        corpus.write_bytes(pickle.dumps([(s.name, s.data) for s in samples(args.sizes)]))
        roots = {
            ref: checkout(stack, args.repo, ref, work / f"rev-{i}")
            for i, ref in enumerate(args.refs)
        }
        runs: dict[str, list[dict[str, list[float]]]] = {ref: [] for ref in args.refs}
        with tqdm(total=args.rounds * len(args.refs), unit="run", desc="timing") as bar:
            for _ in range(args.rounds):
                for ref, root in roots.items():
                    runs[ref].append(time_once(root, corpus, args.repeats, args.threads))
                    bar.update()
    print(f"\n{args.threads} torch threads, median of {args.repeats} runs per image and round, "
          f"median of {args.rounds} alternating rounds\n")  # fmt: skip
    print(table(args.refs, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
