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
EXIT_NO_INDEX=3

PV_NAME=ensure_alias_env
PV_OVERRIDE=ALIAS_ENV_PYTHON
# shellcheck source=../pinned_venv.sh
. "$ROOT/test/pinned_venv.sh"

# setup.cfg is hashed too because an editable install copies its entry
# points (the pytest plugin, the console script) into the env.
pv_start "$REQUIREMENTS" "$ROOT/setup.cfg"
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
    pv_fail "pip install -r $REQUIREMENTS -e $ROOT failed (see above)"
fi
"${PIP[@]}" check >&2 || pv_fail "pip check: the pinned set is inconsistent"
"$ENV_DIR/bin/python" -W ignore -c 'import nameko_sqlalchemy, nameko_redis, nameko_like.cli.main' \
    || pv_fail "the env was installed but does not import"
pv_finish
