"""The interleaved-rounds statistics: median ratio, its range, and flagged ceilings."""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from bench.rounds import run_rounds, series  # noqa: E402


def _round(number, ceiling, service, load=1.0):
    return {
        "round": number,
        "loadavg_start": load,
        "loadavg_end": load,
        "flask": {"ops_per_s": ceiling},
        "hatrac": {"ops_per_s": service, "p50_ms": 2.0 * number, "p99_ms": 9.0},
    }


def test_ratio_is_the_median_of_per_round_ratios_with_its_range():
    rounds = [_round(1, 1000, 500), _round(2, 400, 100), _round(3, 1100, 660)]
    figures = series(rounds, "hatrac", "flask")
    # per round: 0.5, 0.25, 0.6; not 500/1100 (the best ceiling) nor the ratio of medians
    assert figures["ratio"] == 0.5
    assert figures["ratio_range"] == [0.25, 0.6]
    assert figures["value"] == 500
    assert figures["ceiling"] == 1000
    assert figures["p50_ms"] == 4.0
    # 400 is 60% below the ceiling's median (1000): that round is flagged, the others not
    assert figures["flagged_rounds"] == [2]
    assert [r["ceiling_moved"] for r in figures["rounds"]] == [False, True, False]


def test_a_failed_step_makes_the_series_a_failure():
    rounds = [_round(1, 1000, 500), dict(_round(2, 1000, 500), hatrac="failed: boom")]
    assert series(rounds, "hatrac", "flask") == "failed: boom"


def test_run_rounds_runs_steps_in_plan_order_and_records_load():
    calls = []

    def plan(index):
        order = ["ceiling", "service"] if index % 2 == 0 else ["service", "ceiling"]
        return [
            (name, lambda i, name=name: calls.append((i, name)) or {"mib_per_s": 1})
            for name in order
        ]

    rounds = run_rounds(2, plan)
    assert calls == [(0, "ceiling"), (0, "service"), (1, "service"), (1, "ceiling")]
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(isinstance(r["loadavg_start"], float) for r in rounds)


def test_each_group_is_profiled_in_its_own_last_round():
    """A group of fewer rounds than ``rounds`` (the large objects: 3 of 5 at full
    size) or more (the side-by-side group: 9) is sampled in its own last round."""
    import contextlib

    from bench.groups import Context

    events = []

    class Sampler:
        @contextlib.contextmanager
        def sampling(self, label):
            events.append(("sampled", label))
            yield

    context = Context(
        *[None] * 5, 0, 0, 8, 1.0, 1, rounds=5, large_rounds=3, pair_rounds=9,
        worker_pids=[], attempt=lambda label, function, *args: function(*args),
        profiler=Sampler(),
    )  # fmt: skip

    def plan(index):
        return [context.step("c", lambda: events.append(index) or {}, profile="c")]

    for count in (context.large_rounds, context.pair_rounds, context.rounds):
        events.clear()
        context.run_group(count, plan)
        assert events == [*range(count - 1), ("sampled", "c"), count - 1]
