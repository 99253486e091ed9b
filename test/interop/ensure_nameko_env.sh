#!/usr/bin/env bash
# Make sure the virtualenv with the real Nameko (for test/interop and
# test/differential) exists and matches nameko-requirements.txt; build or
# rebuild it if not.
#
#   test/interop/ensure_nameko_env.sh      prints the env's python on stdout
#
# Idempotent (see test/pinned_venv.sh). Environment:
#   NAMEKO_ENV         where the env lives (default: <repo>/.venv-nameko)
#   NAMEKO_ENV_PYTHON  interpreter to build it with (default: the first of
#                      python3.11, python3.12, python3.10, python3 that runs)
# Progress and errors go to stderr; exit status is non-zero on failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REQUIREMENTS="$HERE/nameko-requirements.txt"
PV_NAME=ensure_nameko_env
PV_OVERRIDE=NAMEKO_ENV_PYTHON
ENV_DIR="${NAMEKO_ENV:-$ROOT/.venv-nameko}"
# shellcheck source=../pinned_venv.sh
. "$ROOT/test/pinned_venv.sh"

pv_start "$REQUIREMENTS"
# Bounded retries: an unreachable registry should fail in minutes, not hours.
"$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check \
        --retries 2 --timeout 30 -r "$REQUIREMENTS" \
    || pv_fail "pip install -r $REQUIREMENTS failed (see above)"
"$ENV_DIR/bin/python" -W ignore -c 'import nameko.standalone.rpc, nameko.standalone.events, nameko.cli.main' \
    || pv_fail "nameko was installed but does not import"
pv_finish
