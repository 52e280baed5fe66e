"""Defect 7 of issue 13: ``hatrac gc`` without ``--delete`` reports exactly
what ``--delete`` then removes, by category: temp files of killed PUTs,
unreferenced objects, storage of lost upload jobs."""

from __future__ import annotations

import json
import os
import time

import hatrac
from hatrac.cli import main

WEEK_AGO = time.time() - 7 * 24 * 3600


def _age(path) -> None:
    os.utime(path, (WEEK_AGO, WEEK_AGO))


def _gc(capsys, config_file, *flags) -> dict:
    assert main(["--config", str(config_file), "gc", "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_dry_run_reports_what_delete_removes(tmp_path, capsys):
    config = {"data_directory": str(tmp_path / "data"), "root_acls": {"owner": ["admin"]}}
    config_file = tmp_path / "hatrac_config.json"
    config_file.write_text(json.dumps(config))
    app = hatrac.create_app(str(config_file))
    storage = app.extensions["hatrac"].storage
    # inline bytes no version refers to (their version was deleted, reclaiming failed)
    app.extensions["hatrac"].directory.run(
        lambda tx: tx.execute(
            "INSERT INTO inline_bytes (storage_key, data, created) VALUES (%s, %s, %s)",
            ("inline:01ORPHANINLINE00000000000", b"deleted", WEEK_AGO),
        ),
        write=True,
    )
    app.extensions["hatrac"].close()
    # what killed PUTs, an uncommitted version and a crashed job cancellation leave
    planted = []
    for index in range(3):
        temp = storage.tmp / f"01KILLED{index}.1234.part"
        temp.write_bytes(b"half a body")
        planted.append(temp)
    orphan = storage.path_of("01ORPHAN00000000000000000")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"never committed")
    planted.append(orphan)
    lost_job = storage.jobs / "01LOSTJOB0000000000000000"
    lost_job.write_bytes(b"\0" * 16)
    planted.append(lost_job)
    for path in planted:
        _age(path)
    young = storage.tmp / "01YOUNG.1.part"
    young.write_bytes(b"a PUT in flight")

    dry = _gc(capsys, config_file)
    assert all(path.exists() for path in planted)
    done = _gc(capsys, config_file, "--delete")
    assert dry["orphans"]["would_remove"] == done["orphans"]["removed"] == 5
    assert dry["orphans"]["by_category"] == done["orphans"]["by_category"]
    assert dry["orphans"]["by_category"] == {"temp_files": 3, "objects": 1, "inline": 1}
    assert dry["orphans"]["keys"] == done["orphans"]["keys"]
    assert dry["upload_jobs"]["lost_storage"] == done["upload_jobs"]["lost_storage"] == 1
    assert not any(path.exists() for path in planted)
    assert young.exists()  # inside the grace period
    again = _gc(capsys, config_file)
    assert again["orphans"]["would_remove"] == 0
    assert again["upload_jobs"]["lost_storage"] == 0
