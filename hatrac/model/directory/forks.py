"""Which forked process this is, without a system call per request.

Connection pools are per process: a gunicorn worker forked after the app
was built must open its own. ``os.getpid()`` is a system call on every use
(glibc caches nothing), which the hot path of every request paid to ask
"was I forked?". :func:`generation` answers from a counter that each child
process increments as it starts (``os.register_at_fork``).
"""

from __future__ import annotations

import os

_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    """A number that changes in a child process at fork (and nowhere else)."""
    return _generation


os.register_at_fork(after_in_child=_forked)
