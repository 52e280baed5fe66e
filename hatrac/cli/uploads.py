"""``hatrac gc-jobs``: expire idle upload jobs now.

Removes cancelled jobs and jobs idle longer than ``upload_job_expiry_secs``
(or ``--idle SECONDS``), with their partial storage, and job storage whose
row was lost in a crash. Safe to run while the service is up and on several
hosts at once: each job is claimed by a conditional delete in the database
(see :meth:`hatrac.model.uploads.UploadJobs.sweep_jobs`). The service also
runs the same sweep by itself, at most once a minute per worker.
"""

from __future__ import annotations

import argparse
import json
import time

from ..config import load_config
from ..model.directory import uploads as job_rows
from ..model.service import Hatrac
from ..model.storage import open_storage
from . import EXIT_OK, EXIT_USAGE, command
from .admin import open_configured_directory


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idle",
        type=int,
        default=None,
        metavar="SECONDS",
        help="expire jobs idle longer than this (default: upload_job_expiry_secs)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only count the jobs that would be removed"
    )
    parser.add_argument("--json", action="store_true", help="write a JSON report to stdout")


@command(
    "gc-jobs",
    "Remove upload jobs idle past upload_job_expiry_secs (or --idle) with their partial data.",
    _arguments,
)
def gc_jobs(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.idle is not None and args.idle < 0:
        print("hatrac: --idle must not be negative")
        return EXIT_USAGE
    _, directory = open_configured_directory(args)
    try:
        model = Hatrac(config, directory, open_storage(config))
        idle = config.upload_job_expiry_secs if args.idle is None else args.idle
        # sweep_jobs measures idleness against upload_job_expiry_secs: shift "now"
        now = time.time() + (config.upload_job_expiry_secs - idle)
        if args.dry_run:
            found = directory.run(
                lambda tx: job_rows.expired_jobs(tx, now - config.upload_job_expiry_secs, 10**9)
            )
            report = {"would_remove": [row[1] for row in found]}
        else:
            removed = model.sweep_jobs(now=now, limit=10**9)
            lost = model.sweep_lost_job_storage()
            report = {"removed": removed, "lost_storage_removed": lost}
    finally:
        directory.close()
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.dry_run:
        print(f"upload jobs: would remove {len(report['would_remove'])}")
    else:
        print(
            f"upload jobs: removed {len(report['removed'])}; lost job storage removed: "
            f"{len(report['lost_storage_removed'])}"
        )
    return EXIT_OK
