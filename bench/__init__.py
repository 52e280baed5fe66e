"""The Hatrac benchmark: the service measured against this machine's own ceilings.

Run it with ``scripts/bench.sh`` (or ``python -m bench``); see
``docs/benchmark.md``. Modules:

* :mod:`bench.servers`     PostgreSQL, gunicorn (Hatrac and a minimal Flask app), nginx
* :mod:`bench.load`        the multiprocess HTTP load client (small requests)
* :mod:`bench.transfers`   large transfers: a PUT, a GET, an upload job
* :mod:`bench.ceilings`    disk, nginx, minimal Flask and PostgreSQL round trips
* :mod:`bench.workloads`   the service workloads (a)-(h) of issue 7
* :mod:`bench.report`      targets, the table and the JSON file
* :mod:`bench.profile`     optional py-spy sampling of the gunicorn workers

Nothing here is imported by the service; the benchmark talks to it only over HTTP.
"""
