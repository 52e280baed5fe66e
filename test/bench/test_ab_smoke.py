"""bench.ab still works: two trees (here the same one, on two directories) served and
measured in alternation. Not a timed test: it checks the report's shape, never a figure."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from glob import glob
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def run_ab(arguments: str) -> str:
    """Run ``python -m bench.ab`` with this tree as both sides and ``arguments`` (split at
    spaces); its output, once it exited 0."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.ab", "--a", ".", "--b", ".", *arguments.split()],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.mark.skipif(not glob("/usr/lib/postgresql/*/bin/initdb"), reason="needs PostgreSQL")
def test_ab_compares_postgres_with_sqlite_in_alternation():
    output = run_ab(
        "--workload mixed --directory-a postgres --directory-b sqlite"
        " --rounds 2 --duration 0.3 --workers 1 --threads 2"
    )
    rounds = re.findall(r"^round (\d) ([AB]): [\d.]+ ops/s", output, re.M)
    # A B, then B A: each round alternates which side goes first
    assert rounds == [("1", "A"), ("1", "B"), ("2", "B"), ("2", "A")]
    assert re.search(r"^B/A mixed \(sqlite / postgres\): median [\d.]+, range", output, re.M)


def test_ab_large_workload_reports_transfer_rates():
    """A large workload (an upload job of small chunks, SQLite on both sides): MiB/s per run."""
    output = run_ab(
        "--workload job4 --directory sqlite --large-mib 4 --chunk-mib 1"
        " --rounds 1 --workers 1 --threads 4"
    )
    rounds = re.findall(r"^round (\d) ([AB]): [\d.]+ MiB/s [\d.]+ s", output, re.M)
    assert rounds == [("1", "A"), ("1", "B")]
    assert re.search(r"^B/A job4 \(sqlite / sqlite\): median [\d.]+, range", output, re.M)


@pytest.mark.parametrize(
    "workload, figure",
    [
        ("session_pair", "session / anonymous"),  # half the clients with a session cookie
        ("anon_pair", "second half / first half"),  # the control: no cookie on either half
        ("session_put_pair", "session / anonymous"),  # (h)'s PUTs, each half its own namespace
        ("anon_put_pair", "second half / first half"),
    ],
)
def test_ab_side_by_side_pair_reports_each_rounds_ratio(workload: str, figure: str):
    """The side-by-side GETs or PUTs (SQLite on both sides): one ratio per run, in one tree."""
    output = run_ab(
        f"--workload {workload} --directory sqlite --rounds 1"
        " --duration 0.3 --clients 2 --workers 1 --threads 2"
    )
    rounds = re.findall(rf"^round (\d) ([AB]): [\d.]+ {re.escape(figure)}", output, re.M)
    assert rounds == [("1", "A"), ("1", "B")]
    assert re.search(rf"^B/A {workload} \(sqlite / sqlite\): median [\d.]+", output, re.M)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (scripts/test.sh installs it)")
def test_ab_by_wrk_compares_session_with_anonymous_gets():
    output = run_ab(
        "--workload get --wrk --session-b --cpu --directory sqlite"
        " --rounds 2 --duration 1 --clients 4 --workers 1 --threads 2"
    )
    rounds = re.findall(r"^round (\d) ([AB]): [\d.]+ ops/s by wrk .*CPU", output, re.M)
    assert rounds == [("1", "A"), ("1", "B"), ("2", "B"), ("2", "A")]
    assert re.search(
        r"^B/A get by wrk, B with a session cookie \(sqlite / sqlite\): median [\d.]+", output, re.M
    )
