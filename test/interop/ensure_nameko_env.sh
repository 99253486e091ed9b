#!/usr/bin/env bash
# Make sure the virtualenv with the real Nameko (for test/interop) exists and
# matches nameko-requirements.txt; build or rebuild it if not.
#
#   test/interop/ensure_nameko_env.sh      prints the env's python on stdout
#
# Idempotent: a stamp file in the env records the hash of the requirements and
# the interpreter it was built with; when both match, nothing is installed.
# Environment:
#   NAMEKO_ENV         where the env lives (default: <repo>/.venv-nameko)
#   NAMEKO_ENV_PYTHON  interpreter to build it with (default: the first of
#                      python3.11, python3.12, python3.10, python3 that runs)
# Progress and errors go to stderr; exit status is non-zero on failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ENV_DIR="${NAMEKO_ENV:-$ROOT/.venv-nameko}"
REQUIREMENTS="$HERE/nameko-requirements.txt"
STAMP="$ENV_DIR/.nameko-env-stamp"

say() { printf 'ensure_nameko_env: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

pick_python() {
    if [ -n "${NAMEKO_ENV_PYTHON:-}" ]; then
        "$NAMEKO_ENV_PYTHON" -c '' 2>/dev/null \
            || die "NAMEKO_ENV_PYTHON=$NAMEKO_ENV_PYTHON does not run"
        command -v "$NAMEKO_ENV_PYTHON"
        return
    fi
    # Nameko 2.14.1 is known to work on 3.11 (see nameko-requirements.txt).
    # pyenv shims exist for versions that are not active, so try each one.
    local candidate
    for candidate in python3.11 python3.12 python3.10 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c '' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    die "no Python 3 interpreter found: install python3.11 or set NAMEKO_ENV_PYTHON"
}

PYTHON="$(pick_python)"
PYTHON_VERSION="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
WANT="$( (cat "$REQUIREMENTS"; echo "python $PYTHON_VERSION") | sha256sum | cut -d' ' -f1)"

# Two test runs at once must not build the same env together.
exec 9>"$ENV_DIR.lock"
flock -w 900 9 || die "another run has held $ENV_DIR.lock for 15 minutes"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$ENV_DIR/bin/python" -c '' 2>/dev/null; then
    echo "$ENV_DIR/bin/python"
    exit 0
fi

if [ -e "$ENV_DIR" ]; then
    # Remove only what looks like a virtualenv (ours, stale or half-made).
    [ -f "$ENV_DIR/pyvenv.cfg" ] || [ -z "$(ls -A "$ENV_DIR")" ] \
        || die "$ENV_DIR exists and is not a virtualenv: move it away or set NAMEKO_ENV"
    say "rebuilding $ENV_DIR (requirements or Python changed)"
    rm -rf "$ENV_DIR"
fi

say "creating $ENV_DIR with Python $PYTHON_VERSION ($PYTHON)"
"$PYTHON" -m venv "$ENV_DIR" || { rm -rf "$ENV_DIR"; die "python -m venv failed"; }
# Bounded retries: an unreachable registry should fail in minutes, not hours.
if ! "$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check \
        --retries 2 --timeout 30 -r "$REQUIREMENTS"; then
    rm -rf "$ENV_DIR"
    die "pip install -r $REQUIREMENTS failed (see above)"
fi
"$ENV_DIR/bin/python" -W ignore -c 'import nameko.standalone.rpc, nameko.standalone.events, nameko.cli.main' \
    || { rm -rf "$ENV_DIR"; die "nameko was installed but does not import"; }
printf '%s\n' "$WANT" >"$STAMP"
say "ready: $("$ENV_DIR/bin/python" -m pip show nameko 2>/dev/null | grep '^Version')"
echo "$ENV_DIR/bin/python"
