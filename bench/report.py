"""From raw figures to the report: each service figure beside its ceiling, and targets.

:data:`WORKLOADS` is the fixed list of result keys (the CI smoke test checks
that every one is present). A row's ``ratio`` is service / ceiling for rates
(higher is better) and the plain multiple for the listing (lower is better).
Every ratio is the median over interleaved rounds of the service against the
ceiling sample taken just before it (:mod:`bench.rounds`), with its range.
The targets are issue 16's (issue 7's for the small requests and listings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .rounds import series

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
    "i_client_put",
    "i_client_put_vs_md5_job",
    "i_client_put_nodigest",
    "i_client_get",
    "i_client_small_put",
    "i_client_vs_deriva",
)

FLAT_MEMORY_MIB = 64  # peak worker RSS growth allowed during large transfers


def _row(figures, unit, ceiling_name, target=None, **extra) -> dict:
    """A workload row from a :func:`bench.rounds.series` result (or its failure string)."""
    if isinstance(figures, str):
        return _missing(figures) if figures.startswith("not available") else _failed(figures)
    ratio = figures["ratio"]
    met = None
    if target is not None and ratio is not None:
        met = ratio >= target
    return {
        "status": "ok",
        "unit": unit,
        "ceiling_name": ceiling_name,
        "target": target,
        "met": met,
        **figures,
        **extra,
    }


def _missing(reason: str) -> dict:
    return {"status": "not available", "value": None, "note": reason}


def _failed(reason: str) -> dict:
    return {"status": "failed", "value": None, "note": reason}


def _memory(large_rounds: list) -> dict:
    """Peak RSS growth of any worker during the large transfers, against before the first."""
    first = large_rounds[0].get("c") if large_rounds else None
    if not isinstance(first, dict):
        return _failed(first if isinstance(first, str) else "no large PUT")
    before = first["rss_before"]
    by_phase: dict = {}
    for sample in large_rounds:
        for phase in ("c", "d", "e1", "e4"):
            figures = sample.get(phase)
            if not isinstance(figures, dict):
                continue
            peaks = figures["rss_peak"].items()
            growth = max([(value - before.get(pid, value)) / MIB for pid, value in peaks] or [0.0])
            by_phase[phase] = round(max(by_phase.get(phase, growth), growth), 1)
    growth = max(by_phase.values()) if by_phase else 0.0
    return {
        "status": "ok",
        "value": growth,
        "unit": "MiB growth",
        "ceiling_name": f"flat (< {FLAT_MEMORY_MIB} MiB)",
        "ceiling": None,
        "ratio": None,
        "target": FLAT_MEMORY_MIB,
        "met": growth < FLAT_MEMORY_MIB,
        "baseline_mib": round(max(before.values()) / MIB, 1) if before else 0,
        "object_mib": round(first["bytes"] / MIB, 1),
        "growth_by_phase_mib": by_phase,
    }


def _client_rows(rounds) -> dict:
    """The transfer client's rows (issue 14), each against its own service figure."""
    if not isinstance(rounds, list):
        reason = rounds if isinstance(rounds, str) else "failed: no client rounds"
        return {key: _row(reason, None, None) for key in WORKLOADS if key.startswith("i_")}
    return {
        "i_client_put": _row(
            series(rounds, "client_put", "svc_e4"), "MiB/s", "service upload job, 4 streams", 0.90
        ),
        # the same put against the same service job sending precomputed per-chunk
        # Content-MD5: what the client's put costs the server (it verifies each chunk)
        "i_client_put_vs_md5_job": _row(
            series(rounds, "client_put", "svc_e4_md5"),
            "MiB/s",
            "service upload job, 4 streams, each chunk with its Content-MD5",
        ),
        # the same put without per-chunk digests (--chunk-digest none): what they cost
        "i_client_put_nodigest": _row(
            series(rounds, "client_put_nodigest", "svc_e4"),
            "MiB/s",
            "service upload job, 4 streams",
        ),
        "i_client_get": _row(
            series(rounds, "client_get", "svc_d"), "MiB/s", "service large GET", 0.90
        ),
        "i_client_small_put": _row(
            series(rounds, "client_small", "svc_a"), "files/s", "1 KiB PUTs, 8 clients", 0.70
        ),
        "i_client_vs_deriva": _row(
            series(rounds, "client_put_tls", "deriva_put"),
            "MiB/s",
            "deriva-hatrac-cli put, same https proxy",
            2.0,
        ),
    }


def build_rows(ceilings: dict, service: dict) -> dict:
    """One row per workload key, from the interleaved rounds (see :mod:`bench.rounds`)."""
    small, large, auth = (service[k] for k in ("small_rounds", "large_rounds", "auth_rounds"))
    flask = "minimal Flask GET, same round"
    rows: dict = {
        "a_small_put": _row(series(small, "a", "flask_a"), "ops/s", flask, 0.30),
        "b_small_get": _row(series(small, "b", "flask_b"), "ops/s", flask, 0.50),
        "g_mixed": _row(series(small, "g", "flask_g"), "ops/s", flask),
        "c_large_put": _row(
            series(large, "c", "flask_file"), "MiB/s", "Flask file PUT+fsync", 0.90
        ),
        "d_large_get": _row(series(large, "d", "nginx_d"), "MiB/s", "nginx GET same file", 0.90),
        "e_upload_sequential": _row(
            series(large, "e1", "dd_e1"), "MiB/s", "disk write+fsync (dd)", 0.70
        ),
        "e_upload_parallel4": _row(
            series(large, "e4", "dd_e4"), "MiB/s", "disk write+fsync (dd)", 0.90
        ),
        "h_session_put": _row(
            series(auth, "session_put", "anon_put"), "ops/s", "anonymous PUT, side by side", 0.95
        ),
        "h_session_get": _row(
            series(auth, "session_get", "anon_get"), "ops/s", "anonymous GET, side by side", 0.95
        ),
        "h_deep_acl_put": _row(
            series(auth, "deep_put", "anon_put_deep_ref"), "ops/s", "flat anon. PUT, side by side"
        ),
        "h_deep_acl_get": _row(
            series(auth, "deep_get", "anon_get_deep_ref"), "ops/s", "flat anon. GET, side by side"
        ),
        "worker_memory": _memory(large),
    }
    if rows["c_large_put"]["status"] == "ok":
        versus_dd = series(large, "c", "dd_c")
        rows["c_large_put"]["vs_dd"] = {
            key: versus_dd[key] for key in ("ceiling", "ratio", "ratio_range", "flagged_rounds")
        }
        rows["c_large_put"]["vs_dd"]["target"] = 0.80
        rows["c_large_put"]["vs_dd"]["met"] = versus_dd["ratio"] >= 0.80
        versus_md5 = series(large, "c", "md5_c")
        if isinstance(versus_md5, dict):
            rows["c_large_put"]["vs_md5"] = {
                key: versus_md5[key] for key in ("ceiling", "ratio", "ratio_range")
            }
    directs = (("c_large_put", "c"), ("e_upload_sequential", "e1"), ("e_upload_parallel4", "e4"))
    for key, step in directs:
        versus_direct = series(large, step, "dd_direct")
        if rows[key]["status"] == "ok" and isinstance(versus_direct, dict):
            # informational: against the disk's own speed, past the page cache
            rows[key]["vs_dd_direct"] = {
                k: versus_direct[k] for k in ("ceiling", "ratio", "ratio_range")
            }
    files = ceilings.get("small_files", {}).get("ops_per_s")
    if rows["a_small_put"]["status"] == "ok" and files:
        # a PUT must also create a durable file: that rate bounds it whatever the code does
        rows["a_small_put"]["durable_files_ops_per_s"] = files
        rows["a_small_put"]["vs_durable_files"] = round(rows["a_small_put"]["value"] / files, 3)

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

    rows.update(_client_rows(service.get("client_rounds")))

    nginx_small = ceilings["nginx"]["small_get"]["ops_per_s"]
    best = max(
        [r["value"] for r in rows.values() if r.get("unit") == "ops/s" and r.get("value")] or [0]
    )
    rows["client_capacity"] = {
        "status": "ok",
        "value": nginx_small,
        "unit": "ops/s",
        "ceiling_name": "best service small rate",
        "ceiling": best or None,
        "ratio": round(nginx_small / best, 3) if best else None,
        "target": None,
        "met": None,
        "note": "the load client against nginx's 1 KiB file; ratio = headroom over the "
        "fastest service figure",
    }
    return {key: rows[key] for key in WORKLOADS}


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
    return ", ".join(parts) or "-"


def _range(row: dict) -> str:
    low_high = row.get("ratio_range")
    return f"{low_high[0]:.2f}-{low_high[1]:.2f}" if low_high else ""


def table(rows: dict) -> str:
    """The human-readable report: medians over rounds, the ratio's range, flagged rounds."""
    header = (
        f"{'workload':<20} {'median':>10} {'unit':<10} {'p50/p99 ms':>12} "
        f"{'ceiling (median)':<30} {'value':>9} {'ratio':>6} {'range':>10} {'target':>7}  verdict"
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
            f"{key:<20} {_format_value(row):>10} {row.get('unit', '') or '':<10} {latency:>12} "
            f"{(row.get('ceiling_name') or '')[:30]:<30} "
            f"{(f'{ceiling:,.1f}' if isinstance(ceiling, (int, float)) else '-'):>9} "
            f"{(f'{ratio:.3f}' if ratio is not None else '-'):>6} {_range(row):>10} "
            f"{target_text:>7}  {_verdict(row)}"
        )
        if row.get("flagged_rounds"):
            lines.append(
                f"{'':<20} ceiling moved > 25% from its median in round(s) "
                f"{', '.join(str(r) for r in row['flagged_rounds'])}"
            )
        if "vs_dd" in row:
            versus = row["vs_dd"]
            lines.append(
                f"{'':<20} vs disk write+fsync (dd, median {versus['ceiling']:,.1f} MiB/s): "
                f"{versus['ratio']:.3f} ({versus['ratio_range'][0]:.2f}-"
                f"{versus['ratio_range'][1]:.2f}), target >= 0.8: "
                + ("met" if versus["met"] else "MISSED")
            )
        if "vs_md5" in row:
            versus = row["vs_md5"]
            lines.append(
                f"{'':<20} vs MD5 of one stream on one core (median {versus['ceiling']:,.1f} "
                f"MiB/s): {versus['ratio']:.3f} ({versus['ratio_range'][0]:.2f}-"
                f"{versus['ratio_range'][1]:.2f})"
            )
        if "vs_dd_direct" in row:
            versus = row["vs_dd_direct"]
            lines.append(
                f"{'':<20} vs the disk past the page cache (dd oflag=direct, median "
                f"{versus['ceiling']:,.1f} MiB/s): {versus['ratio']:.3f} "
                f"({versus['ratio_range'][0]:.2f}-{versus['ratio_range'][1]:.2f}), informational"
            )
        if "vs_durable_files" in row:
            lines.append(
                f"{'':<20} vs durable 1 KiB file creations "
                f"({row['durable_files_ops_per_s']:,.1f}/s): {row['vs_durable_files']:.3f}"
            )
        if row.get("status") != "ok" and row.get("note"):
            lines.append(f"{'':<20} {row['note'][:110]}")
    return "\n".join(lines)


def rounds_table(service: dict) -> str:
    """The load average at the start and end of every round of each group."""
    lines = []
    for group in ("small_rounds", "large_rounds", "auth_rounds"):
        loads = ", ".join(
            f"{sample['loadavg_start']:.1f}-{sample['loadavg_end']:.1f}"
            for sample in service.get(group, [])
        )
        lines.append(f"load average per round, {group.replace('_rounds', '')}: {loads}")
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
        f" MiB/s, written to a file and fsynced {ceilings['flask_file_put']['mib_per_s']} MiB/s"
        " (before the rounds)",
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
