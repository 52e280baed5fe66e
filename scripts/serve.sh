#!/usr/bin/env bash
# Install what the service needs and serve it on the embedded default
# (SQLite + filesystem under ./hatrac_data), with gunicorn.
# Usage: scripts/serve.sh [PORT]     (default 8080; HATRAC_CONFIG selects another config)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-${PORT:-8080}}

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e .

.venv/bin/hatrac init-db >/dev/null
echo "Hatrac serves http://127.0.0.1:${port}/hatrac/"
echo "Root namespace owners: $(.venv/bin/hatrac root-acl owner)"
echo "To make a user an owner of the root: .venv/bin/hatrac root-acl owner USERNAME"
exec .venv/bin/gunicorn --config python:hatrac.gunicorn_conf --bind "127.0.0.1:${port}" 'hatrac:create_app()'
