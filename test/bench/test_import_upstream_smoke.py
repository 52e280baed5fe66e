"""The import benchmark still works: a 2,000-version run end to end (never the 1M run).

Asserts the shape and the counts of its result, never a figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from glob import glob
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not glob("/usr/lib/postgresql/*/bin/initdb"), reason="needs PostgreSQL")
def test_import_benchmark_smoke():
    result = subprocess.run(
        [sys.executable, "-m", "bench.import_upstream", "--versions", "2000"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["upstream"]["versions"] == 2000
    imported = figures["import"]
    assert imported["exit_code"] == 0 and imported["problems"] == 0
    assert imported["counts"]["versions_new"] == 2000
    assert imported["counts"]["names_new"] == figures["upstream"]["names"] - 1  # not the root
    assert figures["files"] == 2000 - imported["counts"]["version_tombstones"]
    assert imported["seconds"] > 0
