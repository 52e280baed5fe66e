"""Interleaved rounds: every workload measured right after its ceiling, several times over.

On a shared machine a ceiling measured once, minutes away from the service,
can be off by 2x. A group of workloads is therefore run in short rounds; in
each round every service step follows the ceiling step it is compared with
(ceiling, service, ceiling, service, ...), and the load average is recorded
when the round starts and ends. :func:`series` turns the rounds into one
figure per workload: the median of the per-round ratios with their range,
and the rounds whose ceiling sample moved more than :data:`MOVED` from the
ceiling's median are flagged (their ratio is kept, and counted, not hidden).
"""

from __future__ import annotations

import os
import statistics
from typing import Callable, Optional, Union

MOVED = 0.25  # a ceiling sample this far from the ceiling's median flags its round

Step = tuple[str, Callable[[int], Union[dict, str]]]


def run_rounds(count: int, plan: Callable[[int], list[Step]]) -> list[dict]:
    """Run ``count`` rounds; ``plan(index)`` gives the round's (name, step) pairs in order.

    A step returns a dict of figures, or a string when it failed or is not
    available (see :func:`bench.run.attempt`); either is kept under its name.
    """
    rounds = []
    for index in range(count):
        sample: dict = {"round": index + 1, "loadavg_start": _load()}
        for name, step in plan(index):
            sample[name] = step(index)
        sample["loadavg_end"] = _load()
        rounds.append(sample)
    return rounds


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def rate_of(figures: dict) -> Optional[float]:
    """The figure a ratio is made of: ops/s for request rates, MiB/s for transfers."""
    for key in ("ops_per_s", "mib_per_s"):
        if key in figures:
            return figures[key]
    return None


def series(rounds: list[dict], service: str, ceiling: str) -> Union[dict, str]:
    """Median ratio of ``service`` to ``ceiling`` over the rounds, with its range.

    Returns the failure string of the first round where either step failed.
    """
    per_round = []
    for sample in rounds:
        for name in (service, ceiling):
            if isinstance(sample.get(name), str):
                return sample[name]
            if name not in sample:
                return f"failed: no {name} in round {sample['round']}"
        mine, theirs = rate_of(sample[service]), rate_of(sample[ceiling])
        per_round.append(
            {
                "round": sample["round"],
                "service": mine,
                "ceiling": theirs,
                "ratio": round(mine / theirs, 3) if theirs else None,
                "loadavg": [sample["loadavg_start"], sample["loadavg_end"]],
            }
        )
    ceilings = [r["ceiling"] for r in per_round if r["ceiling"]]
    ratios = [r["ratio"] for r in per_round if r["ratio"] is not None]
    middle = statistics.median(ceilings) if ceilings else None
    for entry in per_round:
        entry["ceiling_moved"] = bool(
            middle and entry["ceiling"] and abs(entry["ceiling"] / middle - 1) > MOVED
        )
    latency = {}
    for key in ("p50_ms", "p99_ms"):
        values = [s[service][key] for s in rounds if key in s[service]]
        if values:
            latency[key] = round(statistics.median(values), 2)
    return {
        "value": round(statistics.median(r["service"] for r in per_round), 1),
        "ceiling": round(middle, 1) if middle else None,
        "ratio": round(statistics.median(ratios), 3) if ratios else None,
        "ratio_range": [min(ratios), max(ratios)] if ratios else None,
        "flagged_rounds": [r["round"] for r in per_round if r["ceiling_moved"]],
        "rounds": per_round,
        **latency,
    }
