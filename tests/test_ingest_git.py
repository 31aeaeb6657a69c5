"""The git adapter on a real repository made with the git CLI: one memory per commit with its
author date, message, touched files and sha; merges marked, Co-authored-by trailers kept,
excluded paths left out, new commits added by a re-run and nothing else."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engram import Memory
from engram.model import Kind

START = datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def git(repo: Path, *args: str, when: datetime = START) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada Lovelace",
           "GIT_AUTHOR_EMAIL": "ada@example.org", "GIT_COMMITTER_NAME": "Ada Lovelace",
           "GIT_COMMITTER_EMAIL": "ada@example.org", "GIT_AUTHOR_DATE": when.isoformat(),
           "GIT_COMMITTER_DATE": when.isoformat()}
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          env=env, text=True)
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str, hours: int) -> str:
    for name, body in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(body)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=START + timedelta(hours=hours))
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: two commits, a feature branch of one commit merged with --no-ff."""
    path = tmp_path / "garden-app"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, {"README.md": "Garden app\n"}, "Start the garden app", 0)
    commit(path, {"src/water.py": "DAYS = 2\n", "secrets/key.txt": "x\n"},
           "Water every second day\n\nThe hose timer reads DAYS.\n\n"
           "Co-authored-by: Grace Hopper <grace@example.org>", 1)
    git(path, "checkout", "-q", "-b", "feature")
    commit(path, {"src/seeds.py": "SEEDS = ['basil']\n"}, "Add the seed list", 2)
    git(path, "checkout", "-q", "main")
    git(path, "merge", "-q", "--no-ff", "feature", "-m", "Merge branch 'feature'",
        when=START + timedelta(hours=3))
    return path


@pytest.fixture
def mem(keyword_mem: Memory) -> Memory:
    return keyword_mem


def commits(mem: Memory) -> dict[str, str]:
    """Each commit memory's first line → its content."""
    return {e.content.splitlines()[0]: e.content
            for e in mem.list(user_id="ada", tags=["ingest:git"], limit=None)}


def test_every_commit_is_a_memory_with_its_date_author_files_and_sha(mem: Memory,
                                                                      repo: Path) -> None:
    summary = mem.ingest("git", repo, user_id="ada")
    assert (summary.added, summary.errors) == (4, 0)
    entries = {e.content.splitlines()[0]: e
               for e in mem.list(user_id="ada", tags=["ingest:git"])}
    water = entries["Water every second day"]
    sha = git(repo, "rev-parse", "HEAD~1")
    assert water.sources[0].kind == "git" and water.sources[0].ref == sha
    assert water.occurred_at == datetime(2024, 3, 1, 9, tzinfo=UTC)  # 10:00 +01:00
    assert water.memory_type is Kind.EVENT
    assert water.content == ("Water every second day\n\nThe hose timer reads DAYS.\n\n"
                             f"Commit {sha[:10]} by Ada Lovelace, Grace Hopper; files: "
                             "secrets/key.txt, src/water.py")
    assert water.metadata["co_authors"] == ["Grace Hopper <grace@example.org>"]
    assert water.metadata["author"] == "Ada Lovelace <ada@example.org>"
    merge = entries["Merge branch 'feature'"]
    assert "merge" in merge.tags and len(merge.metadata["parents"]) == 2
    assert merge.metadata["files"] == ["src/seeds.py"]  # what it brought to main
    assert "Add the seed list" in entries  # the branch's own commit too


def test_excluded_paths_are_left_out_of_commits(mem: Memory, repo: Path) -> None:
    mem.ingest("git", repo, user_id="ada", exclude=["secrets/*"])
    water = next(c for first, c in commits(mem).items() if first.startswith("Water"))
    assert "secrets" not in water and water.endswith("files: src/water.py")


def test_a_rerun_adds_only_new_commits(mem: Memory, repo: Path) -> None:
    mem.ingest("git", repo, user_id="ada")
    again = mem.ingest("git", repo, user_id="ada")
    assert (again.added, again.unchanged) == (0, 4)
    commit(repo, {"src/water.py": "DAYS = 3\n"}, "Water less in winter", 5)
    later = mem.ingest("git", repo, user_id="ada")
    assert (later.added, later.unchanged) == (1, 4)
    assert "Water less in winter" in commits(mem)


def test_a_clone_elsewhere_is_the_same_history(mem: Memory, repo: Path,
                                               tmp_path: Path) -> None:
    mem.ingest("git", repo, user_id="ada")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    assert mem.ingest("git", clone, user_id="ada").unchanged == 4


def test_a_subfolder_or_an_empty_repository_is_refused(mem: Memory, repo: Path,
                                                       tmp_path: Path) -> None:
    from engram.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not the top of a git repository"):
        mem.ingest("git", repo / "src", user_id="ada")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(InvalidInput, match="holds nothing to ingest as git"):
        mem.ingest("git", empty, user_id="ada")
