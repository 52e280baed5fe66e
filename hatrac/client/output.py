"""What the user sees: results on stdout, messages on stderr, progress bars.

Progress bars (bytes, rate, ETA; one per file and a total for recursive
transfers) are drawn with tqdm on stderr, only when stderr is a terminal
and neither ``-q`` nor ``--json`` was given. ``--json`` prints one JSON
object per line on stdout for each result or error.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Optional

from tqdm import tqdm


class Output:
    """The run's reporting settings and helpers (thread-safe)."""

    def __init__(
        self, json_lines: bool = False, quiet: bool = False, progress: Optional[bool] = None
    ) -> None:
        self.json_lines = json_lines
        self.quiet = quiet
        if progress is None:
            progress = sys.stderr.isatty()
        self.progress = progress and not quiet and not json_lines
        self._lock = threading.Lock()

    def result(self, record: dict, text: Optional[str] = None) -> None:
        """One result: a JSON line, or ``text`` (if any) on stdout."""
        with self._lock:
            if self.json_lines:
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            elif text is not None:
                if self.progress:
                    tqdm.write(text, file=sys.stdout)
                else:
                    sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def info(self, text: str) -> None:
        """A human remark on stderr (not with -q or --json)."""
        if not self.quiet and not self.json_lines:
            with self._lock:
                sys.stderr.write(text + "\n")

    def error(self, text: str, record: Optional[dict] = None) -> None:
        with self._lock:
            if self.json_lines:
                line = {"error": text, **(record or {})}
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            sys.stderr.write("hatrac-client: " + text + "\n")

    def bar(self, total: Optional[int], label: str, position: Optional[int] = None) -> Bar:
        return Bar(self, total, label, position)


class Bar:
    """A byte progress bar, or nothing when progress is off."""

    def __init__(
        self, output: Output, total: Optional[int], label: str, position: Optional[int] = None
    ) -> None:
        self._bar = None
        self._lock = threading.Lock()
        if output.progress:
            self._bar = tqdm(
                total=total,
                desc=label[-40:],
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                leave=position is None,
                position=position,
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def update(self, count: int) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
