"""``hatrac gc-jobs``: the admin command that expires idle upload jobs."""

from __future__ import annotations

import json

from helpers import job_files

from hatrac.cli import main


def test_gc_jobs(client, ns, app, config, tmp_path, capsys):
    reply = client.post(
        ns + "/obj;upload", user="alice", json={"chunk-length": 4, "content-length": 8}
    )
    assert reply.status == 201
    job = reply.headers["Location"]
    path = tmp_path / "hatrac_config.json"
    path.write_text(json.dumps(config))
    assert main(["--config", str(path), "gc-jobs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == []
    assert client.get(job, user="alice").status == 200
    assert main(["--config", str(path), "gc-jobs", "--idle", "0", "--dry-run", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["would_remove"]) == 1
    assert client.get(job, user="alice").status == 200
    assert main(["--config", str(path), "gc-jobs", "--idle", "0"]) == 0
    assert "removed 1" in capsys.readouterr().out
    assert client.get(job, user="alice").status == 404
    assert job_files(app) in (None, [])
