"""From raw figures to the report: each service figure beside its ceiling, and targets.

:data:`WORKLOADS` is the fixed list of result keys (the CI smoke test checks
that every one is present). A row's ``ratio`` is service / ceiling for rates
(higher is better) and the plain multiple for the listing (lower is better).
The targets are issue 7's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

MIB = 1024 * 1024

WORKLOADS = (
    "a_small_put",
    "b_small_get",
    "c_large_put",
    "d_large_get",
    "e_upload_sequential",
    "e_upload_parallel4",
    "f_listing",
    "g_mixed",
    "h_session_put",
    "h_session_get",
    "h_deep_acl_put",
    "h_deep_acl_get",
    "worker_memory",
    "client_capacity",
)

FLAT_MEMORY_MIB = 64  # peak worker RSS growth allowed during large transfers


def _row(value, unit, ceiling_name=None, ceiling=None, target=None, **extra) -> dict:
    ratio = round(value / ceiling, 3) if ceiling else None
    met = None
    if target is not None and ratio is not None:
        met = ratio >= target
    return {
        "status": "ok",
        "value": value,
        "unit": unit,
        "ceiling_name": ceiling_name,
        "ceiling": ceiling,
        "ratio": ratio,
        "target": target,
        "met": met,
        **extra,
    }


def _missing(reason: str) -> dict:
    return {"status": "not available", "value": None, "note": reason}


def _failed(reason: str) -> dict:
    return {"status": "failed", "value": None, "note": reason}


def build_rows(ceilings: dict, service: dict) -> dict:
    """One row per workload key, from the raw ceiling and service figures."""
    rows: dict = {}
    flask = ceilings["flask"]["small_get"]["ops_per_s"]
    disk_write = ceilings["disk"]["write_fsync"]["mib_per_s"]
    nginx_large = ceilings["nginx"]["large_get"]["mib_per_s"]
    nginx_small = ceilings["nginx"]["small_get"]["ops_per_s"]

    def small(key, raw, target, anonymous=None, anonymous_key=None):
        if isinstance(raw, str):
            rows[key] = _missing(raw) if raw.startswith("not available") else _failed(raw)
            return
        row = _row(
            raw["ops_per_s"],
            "ops/s",
            "minimal Flask GET",
            flask,
            target,
            p50_ms=raw["p50_ms"],
            p99_ms=raw["p99_ms"],
        )
        if anonymous is not None and not isinstance(anonymous, str):
            versus = round(raw["ops_per_s"] / anonymous["ops_per_s"], 3)
            row["vs_anonymous"] = versus
            row["anonymous_key"] = anonymous_key
        rows[key] = row

    small("a_small_put", service["a"], 0.30)
    files = ceilings.get("small_files", {}).get("ops_per_s")
    if rows["a_small_put"]["status"] == "ok" and files:
        # a PUT must also create a durable file: that rate bounds it whatever the code does
        rows["a_small_put"]["durable_files_ops_per_s"] = files
        rows["a_small_put"]["vs_durable_files"] = round(rows["a_small_put"]["value"] / files, 3)
    small("b_small_get", service["b"], 0.50)

    large = service["cd"]
    if isinstance(large, str):
        rows["c_large_put"] = rows["d_large_get"] = _failed(large)
        rows["worker_memory"] = _failed(large)
    else:
        rows["c_large_put"] = _row(
            large["put"]["mib_per_s"], "MiB/s", "disk write+fsync (dd)", disk_write, 0.90
        )
        body_read = ceilings.get("flask_body_read", {}).get("mib_per_s")
        if body_read:
            # no PUT through gunicorn can be faster than its body reader
            rows["c_large_put"]["gunicorn_body_read_mib_per_s"] = body_read
            rows["c_large_put"]["vs_gunicorn_body_read"] = round(
                large["put"]["mib_per_s"] / body_read, 3
            )
        rows["d_large_get"] = _row(
            large["get"]["mib_per_s"], "MiB/s", "nginx GET same file", nginx_large, 0.90
        )
        phases = {"large_put": large["rss_peak_put"], "large_get": large["rss_peak_get"]}
        job = service["e"]
        if isinstance(job, dict):
            phases["upload_jobs"] = job["rss_peak"]
        by_phase = {}
        for phase, peak in phases.items():
            by_phase[phase] = round(
                max(
                    [
                        (value - large["rss_before"].get(pid, value)) / MIB
                        for pid, value in peak.items()
                    ]
                    or [0.0]
                ),
                1,
            )
        growth = max(by_phase.values())
        baseline = max(large["rss_before"].values()) / MIB if large["rss_before"] else 0
        rows["worker_memory"] = {
            "status": "ok",
            "value": round(growth, 1),
            "unit": "MiB growth",
            "ceiling_name": f"flat (< {FLAT_MEMORY_MIB} MiB)",
            "ceiling": None,
            "ratio": None,
            "target": FLAT_MEMORY_MIB,
            "met": growth < FLAT_MEMORY_MIB,
            "baseline_mib": round(baseline, 1),
            "object_mib": round(large["put"]["bytes"] / MIB, 1),
            "growth_by_phase_mib": by_phase,
        }

    job = service["e"]
    if isinstance(job, str):
        maker = _missing if job.startswith("not available") else _failed
        rows["e_upload_sequential"] = rows["e_upload_parallel4"] = maker(job)
    else:
        seq, par = job["sequential"], job["parallel4"]
        rows["e_upload_sequential"] = _row(
            seq["mib_per_s"], "MiB/s", "disk write+fsync (dd)", disk_write, None
        )
        rows["e_upload_parallel4"] = _row(
            par["mib_per_s"], "MiB/s", "disk write+fsync (dd)", disk_write, 0.80
        )

    listed = service["f"]
    if isinstance(listed, str):
        rows["f_listing"] = _failed(listed)
    else:
        multiple = listed["times_small_get"]
        rows["f_listing"] = {
            "status": "ok",
            "value": listed["listing_p50_ms"],
            "unit": "ms",
            "ceiling_name": "one small GET (ms)",
            "ceiling": listed["small_get_p50_ms"],
            "ratio": multiple,
            "target": 10.0,
            "met": multiple is not None and multiple < 10.0,
            "children": listed["children"],
            "note": "ratio = listing time / small GET time; target: below 10",
        }

    small("g_mixed", service["g"], None)
    flat_put, flat_get = service["h_flat_put"], service["h_flat_get"]
    small("h_session_put", service["h_session_put"], 0.30, flat_put, "anonymous PUT")
    small("h_session_get", service["h_session_get"], 0.50, flat_get, "anonymous GET")
    small("h_deep_acl_put", service["h_deep_put"], 0.30, flat_put, "flat anonymous PUT")
    small("h_deep_acl_get", service["h_deep_get"], 0.50, flat_get, "flat anonymous GET")
    for key in ("h_session_put", "h_session_get"):
        row = rows[key]
        if row["status"] == "ok" and "vs_anonymous" in row:
            row["auth_target_met"] = row["vs_anonymous"] >= 0.90

    rows["client_capacity"] = _row(
        nginx_small,
        "ops/s",
        "best service small rate",
        max([r["value"] for k, r in rows.items() if r.get("unit") == "ops/s" and r["value"]] or [0])
        or None,
        None,
        note="the load client against nginx's 1 KiB file; ratio = headroom over the "
        "fastest service figure",
    )
    return rows


def _format_value(row: dict) -> str:
    value = row.get("value")
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _verdict(row: dict) -> str:
    if row.get("status") != "ok":
        return row["status"]
    parts = []
    if row.get("met") is True:
        parts.append("met")
    elif row.get("met") is False:
        parts.append("MISSED")
    if "auth_target_met" in row:
        parts.append("auth<=10%: " + ("met" if row["auth_target_met"] else "MISSED"))
    return ", ".join(parts) or "-"


def table(rows: dict) -> str:
    """The human-readable report."""
    header = (
        f"{'workload':<20} {'figure':>11} {'unit':<10} {'p50/p99 ms':>14} "
        f"{'ceiling':<24} {'value':>10} {'ratio':>7} {'target':>7}  verdict"
    )
    lines = [header, "-" * len(header)]
    for key in WORKLOADS:
        row = rows[key]
        latency = ""
        if row.get("p50_ms") is not None:
            latency = f"{row['p50_ms']:.1f}/{row['p99_ms']:.1f}"
        ceiling = row.get("ceiling")
        ratio = row.get("ratio")
        target = row.get("target")
        target_text = "-"
        if target is not None:
            target_text = f"<{target:g}x" if key in ("f_listing",) else f">={target:g}"
            if key == "worker_memory":
                target_text = f"<{target}MiB"
        lines.append(
            f"{key:<20} {_format_value(row):>11} {row.get('unit', '') or '':<10} {latency:>14} "
            f"{(row.get('ceiling_name') or '')[:24]:<24} "
            f"{(f'{ceiling:,.1f}' if isinstance(ceiling, (int, float)) else '-'):>10} "
            f"{(f'{ratio:.3f}' if ratio is not None else '-'):>7} {target_text:>7}  "
            f"{_verdict(row)}"
        )
        if "vs_anonymous" in row:
            lines.append(
                f"{'':<20} {'':>11} vs {row['anonymous_key']} (same moment): "
                f"{row['vs_anonymous']:.3f}"
            )
        if "vs_gunicorn_body_read" in row:
            lines.append(
                f"{'':<20} {'':>11} vs gunicorn body read, minimal app "
                f"({row['gunicorn_body_read_mib_per_s']:,.1f} MiB/s): "
                f"{row['vs_gunicorn_body_read']:.3f}"
            )
        if "vs_durable_files" in row:
            lines.append(
                f"{'':<20} {'':>11} vs durable 1 KiB file creations "
                f"({row['durable_files_ops_per_s']:,.1f}/s): {row['vs_durable_files']:.3f}"
            )
        if row.get("status") != "ok" and row.get("note"):
            lines.append(f"{'':<20} {row['note'][:110]}")
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def summary_ceilings(ceilings: dict) -> str:
    """The ceilings, one line each."""
    disk, nginx, flask, pg = (ceilings[k] for k in ("disk", "nginx", "flask", "postgres"))
    lines = [
        f"disk: write+fsync {disk['write_fsync']['mib_per_s']} MiB/s{_samples(disk)}, "
        f"uncached read {disk['read']['mib_per_s']} MiB/s",
        f"durable 1 KiB file creations: {ceilings['small_files']['ops_per_s']} ops/s, p50 "
        f"{ceilings['small_files']['p50_ms']} ms",
        f"nginx: large GET {nginx['large_get']['mib_per_s']} MiB/s{_samples(nginx)}, 1 KiB GET "
        f"{nginx['small_get']['ops_per_s']} ops/s (our client)" + _wrk(nginx.get("small_get_wrk")),
        f"minimal Flask: 1 KiB GET {flask['small_get']['ops_per_s']} ops/s, p50 "
        f"{flask['small_get']['p50_ms']} ms{_samples(flask)}" + _wrk(flask.get("small_get_wrk")),
        f"minimal Flask: large PUT body read and dropped {ceilings['flask_body_read']['mib_per_s']}"
        " MiB/s",
        f"PostgreSQL INSERT+SELECT: {pg['concurrent']['ops_per_s']} pairs/s concurrent "
        f"(p50 {pg['concurrent']['p50_ms']} ms), single client p50 "
        f"{pg['single_client']['p50_ms']} ms",
    ]
    return "\n".join(lines)


def _wrk(figures: Optional[dict]) -> str:
    return f"; wrk {figures['ops_per_s']} ops/s" if figures else ""


def _samples(ceiling: dict) -> str:
    samples = ceiling.get("samples")
    return f" (best of {' and '.join(str(s) for s in samples)})" if samples else ""
