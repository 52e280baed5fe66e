"""A server killed (SIGKILL) in the middle of a PUT loses nothing acknowledged
and shows nothing partial; what it leaves in storage is swept as an orphan."""

from __future__ import annotations

import threading
import time

import requests
from servers import GunicornServer

from hatrac.config import build_config
from hatrac.model.directory import open_directory
from hatrac.model.storage.filesystem import FilesystemStorage

OPEN_ROOT = {"owner": ["admin"], "subtree-owner": ["*"]}


def test_sigkill_mid_put(tmp_path):
    config = {"data_directory": str(tmp_path / "data"), "root_acls": OPEN_ROOT}
    server = GunicornServer(config, tmp_path, workers=1, threads=4).start()
    acknowledged = requests.put(server.url + "/hatrac/kept", data=b"acknowledged bytes")
    assert acknowledged.status_code == 201
    started = threading.Event()

    def slow_body():
        for index in range(200):
            if index == 5:
                started.set()
            yield b"x" * 65536
            time.sleep(0.02)

    def upload():
        try:
            requests.put(server.url + "/hatrac/partial", data=slow_body(), timeout=30)
        except requests.RequestException:
            pass  # the server dies under it

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert started.wait(10)
    time.sleep(0.2)
    server.kill()
    uploader.join()

    storage_root = tmp_path / "data" / "storage"
    leftovers = list((storage_root / "tmp").iterdir())
    assert leftovers, "the killed upload should have left its temporary file"

    restarted = GunicornServer(config, tmp_path, workers=1, threads=4).start()
    try:
        assert requests.get(restarted.url + "/hatrac/partial").status_code == 404
        assert requests.get(restarted.url + "/hatrac/kept").content == b"acknowledged bytes"
        listing = requests.get(restarted.url + "/hatrac/").json()
        assert listing == ["/hatrac/kept"]
    finally:
        restarted.stop()

    # the orphan sweep removes what the crash left, and nothing that is live
    full = build_config(config)
    directory = open_directory(full.database_dsn)
    live_keys = directory.run(lambda tx: tx.all_storage_keys())
    directory.close()
    storage = FilesystemStorage(full.storage_path)
    removed = storage.sweep_orphans(live_keys, older_than=time.time() + 1)
    assert {p.name for p in leftovers} <= set(removed)
    assert list((storage_root / "tmp").iterdir()) == []
    # every live version's file is kept (the small acknowledged one is inline, in the database)
    assert set(storage.keys()) == {key for key in live_keys if not key.startswith("inline:")}
    assert any(key.startswith("inline:") for key in live_keys)
