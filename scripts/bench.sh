#!/usr/bin/env bash
# Measure Hatrac against this machine's own ceilings (docs/benchmark.md).
# Installs what is missing (Debian: postgresql, nginx, wrk; Python: the venv
# with the 'bench' extra), then runs the benchmark.
# Usage: scripts/bench.sh [--size tiny|small|full] [--profile] [other options of python -m bench]
set -euo pipefail
cd "$(dirname "$0")/.."

need_debian=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_debian+=(postgresql)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_debian+=(nginx-light)
command -v wrk >/dev/null || need_debian+=(wrk)
if ((${#need_debian[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/bench.sh: needs Debian packages ${need_debian[*]}; run as root or install them" >&2
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
.venv/bin/pip install -q --disable-pip-version-check -e '.[bench]'

# the DERIVA CLI, compared with hatrac-client on the large put: its own venv, so that
# neither the service's venv nor the tests ever depend on it
if [ ! -x .venv-deriva/bin/deriva-hatrac-cli ]; then
    "$python" -m venv .venv-deriva
    .venv-deriva/bin/pip install -q --disable-pip-version-check 'deriva>=1.7' \
        || echo "scripts/bench.sh: could not install deriva; its row will be 'not available'" >&2
fi

exec .venv/bin/python -m bench "$@"
