"""`model_versions.py` checks revisions out, times each in its own process, and cleans up.

It runs on a throw-away git repository holding a copy of the model package, so the test needs
no history of the project's own (a CI checkout may have none).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import model_versions
from benchmarks.corpus import samples


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("versions") / "repo"
    shutil.copytree(
        model_versions.REPO_ROOT / "bentos",
        root / "bentos",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "the model")
    return root


def test_compares_a_revision_with_the_work_tree_image_by_image(repo, capsys):
    before = git(repo, "worktree", "list")
    argv = ["HEAD", ".", "--repo", str(repo), "--rounds", "1", "--repeats", "1", "--sizes", "64"]
    assert model_versions.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert "`HEAD` ms (found)" in rows[0] and "`.` / `HEAD`" in rows[0]
    by_name = {row.split(" | ")[0][2:]: row.split(" | ")[1:] for row in rows[1:]}
    assert set(by_name) == {s.name for s in samples((64,))} | {"mean"}
    for name, (head, tree, ratio) in by_name.items():
        assert float(ratio.strip(" |*")) > 0
        if name != "mean":  # the same code and weights find the same circles
            assert head.split("(")[1] == tree.split("(")[1]
    assert by_name["real-coins.png"][0].endswith("(24)")
    assert git(repo, "worktree", "list") == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-revision-anywhere"], "not a git revision of"),
        (["HEAD", "HEAD"], "each revision once"),
        (["HEAD", "--sizes", "big"], "not a list of integers"),
        (["HEAD", "--sizes", "32"], "64 to 4096"),
        (["HEAD", "--rounds", "0"], "at least 1"),
    ],
)
def test_bad_arguments_get_a_usage_error(argv, message, repo, capsys):
    with pytest.raises(SystemExit) as exit_info:
        model_versions.main([*argv, "--repo", str(repo)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_repository_that_is_not_there_gets_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        model_versions.main(["HEAD", "--repo", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert "no such directory" in capsys.readouterr().err
