# Shared by the scripts that keep a test virtualenv of pinned packages
# (test/interop/ensure_nameko_env.sh, test/alias/ensure_alias_env.sh).
# Source it after setting:
#   PV_NAME      the script's name, for messages
#   ENV_DIR      where the env lives
#   PV_OVERRIDE  the name of the variable that may name the interpreter
# Then: pv_start HASHED_FILE...  (returns early with the env's python when its
# stamp matches), install into "$ENV_DIR", and pv_finish.
# The stamp records the hash of the given files and the interpreter; the
# lock keeps two test runs from building the same env together.

say() { printf '%s: %s\n' "$PV_NAME" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

pv_pick_python() {
    local override="${!PV_OVERRIDE:-}"
    if [ -n "$override" ]; then
        "$override" -c '' 2>/dev/null || die "$PV_OVERRIDE=$override does not run"
        command -v "$override"
        return
    fi
    # The pins were resolved on 3.11; pyenv shims exist for versions that
    # are not active, so try each one.
    local candidate
    for candidate in python3.11 python3.12 python3.10 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c '' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    die "no Python 3 interpreter found: install python3.11 or set $PV_OVERRIDE"
}

# pv_start FILE...: pick the interpreter, lock, and either print the env's
# python and exit 0 (up to date) or make a fresh, empty env.
pv_start() {
    PYTHON="$(pv_pick_python)"
    PYTHON_VERSION="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    STAMP="$ENV_DIR/.pinned-env-stamp"
    WANT="$( (cat "$@"; echo "python $PYTHON_VERSION") | sha256sum | cut -d' ' -f1)"

    exec 9>"$ENV_DIR.lock"
    flock -w 900 9 || die "another run has held $ENV_DIR.lock for 15 minutes"

    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
            && "$ENV_DIR/bin/python" -c '' 2>/dev/null; then
        echo "$ENV_DIR/bin/python"
        exit 0
    fi
    if [ -e "$ENV_DIR" ]; then
        # Remove only what looks like a virtualenv (ours, stale or half-made).
        [ -f "$ENV_DIR/pyvenv.cfg" ] || [ -z "$(ls -A "$ENV_DIR")" ] \
            || die "$ENV_DIR exists and is not a virtualenv: move it away or set another path"
        say "rebuilding $ENV_DIR (its pinned files or Python changed)"
        rm -rf "$ENV_DIR"
    fi
    say "creating $ENV_DIR with Python $PYTHON_VERSION ($PYTHON)"
    "$PYTHON" -m venv "$ENV_DIR" || { rm -rf "$ENV_DIR"; die "python -m venv failed"; }
}

# pv_fail MESSAGE: remove the half-made env and fail.
pv_fail() { rm -rf "$ENV_DIR"; die "$*"; }

# pv_finish: record the stamp and print the env's python.
pv_finish() {
    printf '%s\n' "$WANT" >"$STAMP"
    say "ready: $ENV_DIR"
    echo "$ENV_DIR/bin/python"
}
