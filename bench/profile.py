"""Optional profiling of the service during a workload, with py-spy.

``py-spy record --subprocesses`` samples the gunicorn master and all its
workers while a workload runs; the raw (collapsed-stack) output is kept in
``bench/results/`` (feed it to flamegraph.pl or speedscope) and summarized
here: the functions with the most samples on top of the stack (self time)
and the functions of the service and its web stack with the most samples
anywhere in the stack (inclusive time), as percentages of the wall-clock
samples of threads serving a request (waits on the database or the disk
included: ``--idle``).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

REQUEST_FRAME = "ThreadWorker.handle ("  # a gthread worker thread serving a connection
PROJECT_PARTS = ("hatrac/", "psycopg2/", "werkzeug/", "flask/", "gunicorn/")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed; pip install py-spy (scripts/bench.sh does)")
    return found


def _function(frame: str) -> str:
    """``name (file.py:LINE)`` -> ``name (file.py)``: time per function, not per line."""
    return re.sub(r":\d+\)$", ")", frame)


def summarize(raw: Path, top: int = 15) -> dict:
    """Where request-serving threads spend their (wall-clock) time, from a py-spy raw file.

    Only samples of threads inside gunicorn's ``ThreadWorker.handle`` count (idle
    workers waiting for a connection do not); percentages are of those samples.
    """
    self_time: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit() or REQUEST_FRAME not in stack:
            continue
        frames = [_function(frame) for frame in stack.split(";")]
        count = int(count_text)
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            if any(part in frame for part in PROJECT_PARTS):
                inclusive[frame] += count
    if not total:
        return {"request_samples": 0, "self": [], "inclusive": []}

    def share(counter: Counter) -> list:
        return [
            {"frame": frame, "percent": round(100.0 * count / total, 1)}
            for frame, count in counter.most_common(top)
        ]

    return {"request_samples": total, "self": share(self_time), "inclusive": share(inclusive)}


class Profiler:
    """Samples a process tree while a workload runs; keeps a summary per label."""

    def __init__(self, pid: int, directory: Path, rate: int = 100):
        self.pid = pid
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rate = rate
        self.summaries: dict = {}

    @contextlib.contextmanager
    def sampling(self, label: str) -> Iterator[None]:
        safe = "".join(c if c.isalnum() else "_" for c in label)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        output = self.directory / f"profile-{safe}-{stamp}.txt"
        recorder = subprocess.Popen(
            [py_spy(), "record", "--pid", str(self.pid), "--subprocesses", "--idle"]
            + ["--format", "raw", "--rate", str(self.rate), "--output", str(output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(1.0)  # py-spy attaches to every worker before the load starts
        try:
            yield
        finally:
            recorder.send_signal(signal.SIGINT)
            try:
                _, errors = recorder.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                errors = b""
            if output.exists():
                self.summaries[label] = {"file": str(output), **summarize(output)}
            else:
                self.summaries[label] = {"error": errors.decode(errors="replace")[-500:]}
