"""Importing an upstream Hatrac deployment in place (``hatrac import-upstream``).

* :mod:`.site` reads upstream's configuration and writes ours to match;
* :mod:`.rows` turns upstream's row encodings into ours;
* :mod:`.importer` streams upstream's rows into our directory and checks (or
  copies) the bytes where upstream left them.

Upstream's database and bytes are only read. See docs/migrating.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

from ..model.directory import open_directory
from ..model.directory.upstream import UnknownSchema, UpstreamDatabase
from ..model.storage import build_storage
from .importer import Importer, Options, Report
from .site import Site, SiteError, load_site


def import_site(
    site: Site,
    database_dsn: Optional[str],
    data_directory: str,
    storage_path: Optional[str] = None,
    options: Optional[Options] = None,
    config_out: Optional[str] = None,
    new_prefix: str = "hatrac-new",
    progress: Optional[Callable[[str, int, int], None]] = None,
    extra_config: Optional[dict] = None,
) -> tuple[Report, dict]:
    """Import ``site`` into our database; returns the report and our config.

    ``database_dsn`` None is a dry run: everything is done against a
    throw-away SQLite file, so the report says exactly what an import would
    do, and nothing is written anywhere else (no config, no copied bytes).
    """
    options = options or Options()
    data_directory = str(Path(data_directory).resolve())
    storage_path = storage_path or os.path.join(data_directory, "storage")
    scratch = None
    if database_dsn is None:
        scratch = tempfile.mkdtemp(prefix="hatrac-dry-run-")
        dsn = "sqlite:" + os.path.join(scratch, "dry-run.sqlite3")
        options = Options(hash=options.hash, drop_jobs=options.drop_jobs, batch=options.batch)
    else:
        dsn = database_dsn
    ours_config = site.our_config(database_dsn or dsn, data_directory, storage_path, new_prefix)
    ours_config.update(extra_config or {})
    source = UpstreamDatabase(site.dsn)
    directory = open_directory(dsn)
    try:
        directory.initialize({})
        ours = None
        if options.copy:
            first = ours_config["overlay_backends"][0]
            ours = build_storage(
                first["storage_backend"],
                storage_path=first.get("storage_path"),
                s3_config=first.get("s3_config"),
                service_prefix=site.service_prefix,
            )
        importer = Importer(site, source, directory, ours, options, progress)
        report = importer.run()
        if importer.legacy_names:
            ours_config["legacy_names"] = True
    finally:
        directory.close()
        source.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if config_out and database_dsn is not None:
        Path(config_out).write_text(json.dumps(ours_config, indent=2) + "\n")
    return report, ours_config


__all__ = [
    "Options",
    "Report",
    "Site",
    "SiteError",
    "UnknownSchema",
    "import_site",
    "load_site",
]
