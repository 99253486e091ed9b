#!/usr/bin/env bash
# Make sure the virtualenv for the alias tests (test/alias) exists and matches
# alias-requirements.txt and this checkout's setup.cfg; build it if not.
#
#   test/alias/ensure_alias_env.sh      prints the env's python on stdout
#
# The env holds nameko_like (editable, from this checkout) beside real Nameko
# community extensions and the Nameko they require. Idempotent: a stamp file
# records the hash of the requirements, setup.cfg and the interpreter; when
# they match, nothing is installed.
# Environment:
#   ALIAS_ENV          where the env lives (default: <repo>/.venv-alias)
#   ALIAS_ENV_PYTHON   interpreter to build it with (default: the first of
#                      python3.11, python3.12, python3.10, python3 that runs)
# Exit status: 0 ready; 3 the package index cannot be reached (callers skip);
# anything else is a failure. Progress and errors go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ENV_DIR="${ALIAS_ENV:-$ROOT/.venv-alias}"
REQUIREMENTS="$HERE/alias-requirements.txt"
STAMP="$ENV_DIR/.alias-env-stamp"
EXIT_NO_INDEX=3

say() { printf 'ensure_alias_env: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

pick_python() {
    if [ -n "${ALIAS_ENV_PYTHON:-}" ]; then
        "$ALIAS_ENV_PYTHON" -c '' 2>/dev/null \
            || die "ALIAS_ENV_PYTHON=$ALIAS_ENV_PYTHON does not run"
        command -v "$ALIAS_ENV_PYTHON"
        return
    fi
    # The pins were resolved on 3.11; pyenv shims exist for versions that are
    # not active, so try each one.
    local candidate
    for candidate in python3.11 python3.12 python3.10 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c '' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    die "no Python 3 interpreter found: install python3.11 or set ALIAS_ENV_PYTHON"
}

PYTHON="$(pick_python)"
PYTHON_VERSION="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
# setup.cfg is in the hash because an editable install copies its entry
# points (the pytest plugin, the console script) into the env.
WANT="$( (cat "$REQUIREMENTS" "$ROOT/setup.cfg"; echo "python $PYTHON_VERSION") \
    | sha256sum | cut -d' ' -f1)"

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
        || die "$ENV_DIR exists and is not a virtualenv: move it away or set ALIAS_ENV"
    say "rebuilding $ENV_DIR (requirements, setup.cfg or Python changed)"
    rm -rf "$ENV_DIR"
fi

say "creating $ENV_DIR with Python $PYTHON_VERSION ($PYTHON)"
"$PYTHON" -m venv "$ENV_DIR" || { rm -rf "$ENV_DIR"; die "python -m venv failed"; }
PIP=("$ENV_DIR/bin/python" -m pip --disable-pip-version-check)

# One small download first: if that fails the index is out of reach, which
# callers treat as a reason to skip, unlike a broken requirement set.
PROBE_DIR="$(mktemp -d)"
if ! "${PIP[@]}" download -q --retries 2 --timeout 30 --no-deps --dest "$PROBE_DIR" \
        "$(grep -m1 '^nameko-redis==' "$REQUIREMENTS")"; then
    rm -rf "$PROBE_DIR" "$ENV_DIR"
    say "FAILED: cannot download from the package index (see above)"
    exit "$EXIT_NO_INDEX"
fi
rm -rf "$PROBE_DIR"

# Bounded retries: an unreachable registry should fail in minutes, not hours.
if ! "${PIP[@]}" install -q --retries 2 --timeout 30 -r "$REQUIREMENTS" -e "$ROOT"; then
    rm -rf "$ENV_DIR"
    die "pip install -r $REQUIREMENTS -e $ROOT failed (see above)"
fi
"${PIP[@]}" check >&2 || { rm -rf "$ENV_DIR"; die "pip check: the pinned set is inconsistent"; }
"$ENV_DIR/bin/python" -W ignore -c 'import nameko_sqlalchemy, nameko_redis, nameko_like.cli.main' \
    || { rm -rf "$ENV_DIR"; die "the env was installed but does not import"; }
printf '%s\n' "$WANT" >"$STAMP"
say "ready: $ENV_DIR"
echo "$ENV_DIR/bin/python"
