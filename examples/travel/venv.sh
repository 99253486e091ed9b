# Sourced by run-embedded and run-real: sets PY to a Python that has
# nameko_like (and redis) installed.
#
# TRAVEL_PYTHON, when set, is used as it is (the tests run the scripts with
# their own interpreter). Otherwise this is the repository's .venv, made and
# kept up to date the way scripts/test does it: created when missing, and
# nameko_like[dev] reinstalled (editable) when setup.cfg or setup.py changed.

ensure_travel_python() {
    local root="$1"
    if [ -n "${TRAVEL_PYTHON:-}" ]; then
        PY="$TRAVEL_PYTHON"
        return 0
    fi
    local venv="$root/.venv"
    local stamp="$venv/.nameko_like-install-stamp"
    PY="$venv/bin/python"
    if [ -e "$venv" ] && ! "$PY" -c '' 2>/dev/null; then
        echo "travel: $venv exists but its python does not run: delete it and try again" >&2
        return 1
    fi
    if [ ! -e "$venv" ]; then
        echo "travel: creating $venv" >&2
        python3 -m venv "$venv" || {
            rm -rf "$venv"
            echo "travel: could not create a virtualenv: install python3 (>= 3.10) with its venv module ('apt-get install python3-venv')" >&2
            return 1
        }
        "$PY" -m pip install -q --upgrade pip || return 1
    fi
    local want
    want="$(cd "$root" && cat setup.cfg setup.py | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "travel: installing nameko_like[dev] into $venv" >&2
        (cd "$root" && "$PY" -m pip install -q -e '.[dev]') || {
            echo "travel: pip install -e '.[dev]' failed (see above)" >&2
            return 1
        }
        printf '%s\n' "$want" >"$stamp"
    fi
}
