"""The benchmark still works: its tiny mode runs end to end and reports every workload.

This is not a timed test: it asserts the shape of the results, never a figure.
It needs Debian's PostgreSQL and nginx (``scripts/bench.sh`` installs them)
and is skipped without them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from glob import glob
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from bench.report import WORKLOADS  # noqa: E402

needs = []
if not glob("/usr/lib/postgresql/*/bin/initdb"):
    needs.append("PostgreSQL")
if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
    needs.append("nginx")


@pytest.mark.skipif(bool(needs), reason=f"needs {', '.join(needs)} (scripts/bench.sh installs)")
def test_tiny_benchmark_reports_every_workload(tmp_path):
    result_file = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--duration", "0.5"]
        + ["--json", str(result_file)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(result_file.read_text())

    for ceiling in ("disk", "nginx", "flask", "postgres"):
        assert ceiling in document["ceilings"]
    rows = document["workloads"]
    assert set(WORKLOADS) <= set(rows)
    for key in WORKLOADS:
        row = rows[key]
        # features still being built may be reported as not available, never as failed
        assert row["status"] in ("ok", "not available"), (key, row)
        if row["status"] == "ok":
            assert isinstance(row["value"], (int, float)), (key, row)
            if row.get("ceiling") is not None:
                assert isinstance(row["ratio"], (int, float)), (key, row)
    for key in ("a_small_put", "b_small_get", "c_large_put", "d_large_get", "f_listing"):
        assert rows[key]["status"] == "ok", (key, rows[key])
    # the disk past the page cache, beside each large write (informational)
    for key in ("c_large_put", "e_upload_sequential", "e_upload_parallel4"):
        if rows[key]["status"] == "ok":
            assert isinstance(rows[key]["vs_dd_direct"]["ratio"], (int, float)), rows[key]
    # (d): nginx and the service serve the very same stored file, three GETs each,
    # with the share of it in the page cache recorded before them
    for sample in document["service"]["large_rounds"]:
        ceiling, service = sample["nginx_d"], sample["d"]
        assert ceiling["file"] == service["file"] != "/large.bin", sample
        assert len(ceiling["transfers"]) == len(service["transfers"]) == 3
        assert 0 <= service["cached_before"] <= service["bytes"]
    assert "workload" in run.stdout and "ratio" in run.stdout
