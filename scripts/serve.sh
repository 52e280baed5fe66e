#!/usr/bin/env bash
# Install what the service needs and serve it on the embedded default
# (SQLite + filesystem under ./hatrac_data), with gunicorn.
# Usage: scripts/serve.sh [PORT]     (default 8080; HATRAC_CONFIG selects another config,
#        HATRAC_EXTRAS=postgres,s3,oidc installs the extras it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-${PORT:-8080}}

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# (re)install only when .venv is new or the package metadata changed, so restarts are fast;
# HATRAC_EXTRAS=postgres,s3,oidc adds what a config in HATRAC_CONFIG needs
extras=${HATRAC_EXTRAS:+[$HATRAC_EXTRAS]}
stamp=.venv/.hatrac-installed-serve
want=$( (cat pyproject.toml setup.py hatrac/__init__.py; printf '%s' "$extras") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -e ".$extras"
    echo "$want" > "$stamp"
fi

# the config file every 'hatrac' command and the server read: written once, then kept
if [ -z "${HATRAC_CONFIG:-}" ]; then
    mkdir -p hatrac_data
    if [ ! -e hatrac_data/hatrac_config.json ]; then
        # data_directory "." is the directory of this file: the store stays in ./hatrac_data
        printf '{\n  "data_directory": "."\n}\n' > hatrac_data/hatrac_config.json
    fi
    HATRAC_CONFIG="$PWD/hatrac_data/hatrac_config.json"
fi
export HATRAC_CONFIG

# one interpreter start: create or upgrade the schema, then say where the store is,
# whether the admin exists and who owns the root (restarts stay fast)
{ read -r data_dir; read -r has_admin; read -r owners; } < <(.venv/bin/python - <<'PY'
import json, sys
from hatrac.auth.accounts import Accounts
from hatrac.config import ConfigError, load_config
from hatrac.model.directory import directory_from_config
from hatrac.urls import ROOT
try:
    config = load_config()
    directory = directory_from_config(config)
    directory.initialize(config.root_acls)
    users = {user.name for user in Accounts(directory, config).users()}
    owners = directory.run(lambda tx: tx.get_name(ROOT)).acls.get("owner", [])
    directory.close()
except (ConfigError, OSError) as error:
    sys.exit(f"hatrac: {error}")
print(config.data_directory)
print("yes" if "admin" in users else "no")
print(json.dumps(owners))
PY
)
[ -n "${data_dir:-}" ] || exit 2   # the reason is on standard error

# first run: a built-in "admin" account with a random password, owner of the root
if [ "$has_admin" != yes ]; then
    password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(18))')
    printf '%s\n' "$password" | .venv/bin/hatrac user add admin --password-stdin --display-name Administrator >/dev/null
    .venv/bin/hatrac root-acl owner admin >/dev/null
    mkdir -p "$data_dir"
    (umask 077 && printf '%s' "$password" > "$data_dir/admin-password")
    chmod 600 "$data_dir/admin-password"
    echo "Created user 'admin' (owner of the root namespace) with password: $password"
    echo "  (shown once; also saved in $data_dir/admin-password, mode 600)"
    echo "Log in with curl:"
    echo "  curl -c jar -d username=admin --data-urlencode password@$data_dir/admin-password http://localhost:${port}/authn/session"
    echo "  curl -b jar http://localhost:${port}/hatrac/"
    echo "Log in with DERIVA (Python): HatracStore('http', 'localhost:${port}', {'username': 'admin', 'password': '...'})"
    echo "  (say 'localhost:${port}', not '127.0.0.1:${port}', to DERIVA: for a host with a dot it files a"
    echo "   cookie credential under 'HOST:PORT' as cookie domain, which never matches, so it is never sent)"
    echo "More users: echo PASSWORD | .venv/bin/hatrac user add NAME --password-stdin  (see docs/authentication.md)"
fi
echo "Hatrac serves http://127.0.0.1:${port}/hatrac/ (also http://localhost:${port}/hatrac/, the name to give DERIVA clients)"
[ "$has_admin" = yes ] || owners=$(.venv/bin/hatrac root-acl owner)
echo "Root namespace owners: $owners"
echo "To make a user an owner of the root: .venv/bin/hatrac root-acl owner USERNAME"
echo "For 'hatrac' commands in another shell, use this store's config:"
echo "  export HATRAC_CONFIG=$HATRAC_CONFIG"
exec .venv/bin/gunicorn --config python:hatrac.gunicorn_conf --bind "127.0.0.1:${port}" 'hatrac:create_app()'
