#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

need_debian=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_debian+=(postgresql)
# the Apache end-to-end tests (test/deploy): Debian's Apache and its mod_wsgi, which
# embeds /usr/bin/python3; .venv must be of the same minor version (docs/install.md)
command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || need_debian+=(apache2)
[ -e /usr/lib/apache2/modules/mod_wsgi.so ] || need_debian+=(libapache2-mod-wsgi-py3)
# the browser tests: Debian's Chromium, driven by Playwright from PyPI (test/browser.py);
# Playwright's own browser download is never used
[ -x /usr/bin/chromium ] || need_debian+=(chromium)
# and Debian's Firefox ESR, driven by the same Playwright over WebDriver BiDi (test/firefox.py)
[ -x /usr/bin/firefox-esr ] || need_debian+=(firefox-esr)
# hatrac-client's https test makes a self-signed certificate with the openssl command
command -v openssl >/dev/null || need_debian+=(openssl)
# bench.ab --wrk's smoke test: wrk, the independent (C) load client the benchmark uses too
command -v wrk >/dev/null || need_debian+=(wrk)
# the benchmark's smoke test (test/bench/test_bench_smoke.py, --size tiny): nginx, its ceiling
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_debian+=(nginx-light)
if ((${#need_debian[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/test.sh: needs Debian packages ${need_debian[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "installing Debian packages: ${need_debian[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_debian[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# (re)install only when .venv is new or the package metadata changed
stamp=.venv/.hatrac-installed-test
want=$(cat pyproject.toml setup.py hatrac/__init__.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    echo "$want" > "$stamp"
fi

.venv/bin/ruff check hatrac test
.venv/bin/ruff format --check hatrac test
exec .venv/bin/python -m pytest -q "$@"
