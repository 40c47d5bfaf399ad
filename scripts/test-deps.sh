#!/usr/bin/env bash
# What the tests need beyond the Python environment. Idempotent; installs only what is missing.
#
# - openssh-server and openssh-client: tests/test_remote.py starts a throwaway sshd on 127.0.0.1
#   (its own config and keys in a temporary folder; the system's sshd service is never started).
# - chromium: tests/test_report_html.py opens the HTML report in a real headless Chromium.
# - postgresql: tests/postgres_server.py runs a throwaway PostgreSQL server (initdb/pg_ctl from
#   /usr/lib/postgresql/<ver>/bin, its own data folder, 127.0.0.1 on a free port) for the
#   `edgepack tune --storage postgresql://...` tests; the system's cluster is never started.
#   Its Python driver, psycopg2-binary, is in the dev extra (pyproject.toml), not installed here.
# - .venv-device/: the "device" of the remote-profiling tests, a second virtual environment with
#   tflite-runtime 2.14.0 and numpy<2, as many Raspberry Pi images carry (tflite-runtime 2.14 fails
#   under numpy 2, and has wheels for Python 3.8-3.11 only).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE_VENV=".venv-device"
DEVICE_STAMP="$DEVICE_VENV/.edgepack-device-installed"
export DEBIAN_FRONTEND=noninteractive

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "test-deps: need root (or sudo) to run: $*" >&2; return 1; fi
}

APT_UPDATED=""
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "test-deps: apt-get is not available; install $* yourself" >&2
        return 1
    fi
    [ -n "$APT_UPDATED" ] || { as_root apt-get update -qq; APT_UPDATED=1; }
    # Docker images carry a policy-rc.d that stops services from starting; add one if missing so
    # installing openssh-server does not start the system's sshd as a side effect.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
        trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. ssh client and server binaries (the server is only ever run by the tests, on a free high port).
if ! { command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; } || ! command -v ssh >/dev/null 2>&1 \
        || ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "test-deps: installing openssh-server and openssh-client"
    apt_install openssh-server openssh-client
fi

# 2. Chromium (Debian's package) and a font, for the HTML report test.
if ! command -v chromium >/dev/null 2>&1; then
    echo "test-deps: installing chromium"
    apt_install chromium fonts-dejavu-core
fi

# 3. PostgreSQL server binaries (Debian's package; the tests run their own server as the postgres
#    user). The package creates a default cluster; policy-rc.d keeps it from starting, and if it
#    is running anyway it is stopped, so only the tests' servers ever run.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "test-deps: installing postgresql"
    apt_install postgresql
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
            if [[ "$status" == online* ]]; then  # "online" or "online,recovery"
                echo "test-deps: stopping the system's PostgreSQL cluster $ver/$name"
                as_root pg_ctlcluster "$ver" "$name" stop
            fi
        done
    fi
fi

# 4. The base install: `pip install edgepack` without an extra, in its own environment.
BASE_VENV=".venv-base"
BASE_STAMP="$BASE_VENV/.edgepack-base-installed"
if [ ! -f "$BASE_STAMP" ] || [ pyproject.toml -nt "$BASE_STAMP" ]; then
    echo "test-deps: creating $BASE_VENV (edgepack without extras: no TensorFlow)"
    rm -rf "$BASE_VENV"
    python3 -m venv "$BASE_VENV"
    "$BASE_VENV/bin/pip" install -q --disable-pip-version-check -e .
    touch "$BASE_STAMP"
fi

# 5. The device environment: a Python 3.8-3.11 with tflite-runtime 2.14.0 and numpy<2.
pick_python() {
    for candidate in "${DEVICE_PYTHON:-}" python3 python3.11 python3.10 python3.9; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

if [ ! -f "$DEVICE_STAMP" ] || ! "$DEVICE_VENV/bin/python" -c "import numpy, tflite_runtime.interpreter" 2>/dev/null; then
    if ! PY="$(pick_python)"; then
        echo "test-deps: WARNING: no Python 3.8-3.11 found for $DEVICE_VENV (tflite-runtime 2.14 has no wheel for" \
             "newer Pythons); the tflite-runtime tests will be skipped. Set DEVICE_PYTHON=/path/to/python3.11." >&2
        exit 0
    fi
    if ! "$PY" -c "import ensurepip, venv" 2>/dev/null; then
        echo "test-deps: installing python3-venv"
        apt_install python3-venv
    fi
    echo "test-deps: creating $DEVICE_VENV with $PY (tflite-runtime 2.14.0, numpy<2)"
    rm -rf "$DEVICE_VENV"
    "$PY" -m venv "$DEVICE_VENV"
    "$DEVICE_VENV/bin/pip" install -q --disable-pip-version-check "tflite-runtime==2.14.0" "numpy<2"
    "$DEVICE_VENV/bin/python" -c "import numpy, tflite_runtime.interpreter"
    touch "$DEVICE_STAMP"
fi

exit 0
