"""Run the whole pytest suite as a few pytest processes side by side.

Most of the suite's wall time is spent waiting (on brokers booting, on
timeouts, on faults taking effect), not computing, so several pytest
processes at once finish much sooner even on two cores. pytest-xdist cannot
do this here: its workers talk to the controller through execnet threads,
and a worker hangs once the plugin has monkey-patched it with eventlet.

The test files are dealt to ``--shards`` groups, slowest first, each to the
group with the least work so far (seconds per file from the last complete
run, kept in ``.pytest_cache``, else from ``test/shard_weights.txt``, else
1 s). Each group is an ordinary pytest session (patched, with its own
session fixtures: its own private fault broker, say) with its own
``--basetemp``; files sharing a module-level resource stay in one process
(they are whole files), and nothing the tests share is on a fixed port:
vhosts are fresh per test, private brokers take free ports, the pinned
virtualenvs are built under a lock.

Output: one line per group as it ends; then, for a failed group, its whole
output; for every group its summary lines; last a combined pytest-style
closing line. Exit status: 0 when every group passed, else 1 (5 when no
test file was found).

    python scripts/pytest_shards.py [--shards N] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_FILE = ROOT / "test" / "shard_weights.txt"
#: per-file seconds of the last complete sharded run
CACHE_FILE = ROOT / ".pytest_cache" / "nameko_like_shard_times.json"
DEFAULT_WEIGHT = 1.0
#: Files run in the same process: both run mypy with the repo's .mypy_cache,
#: which two mypy processes must not write at once.
TOGETHER = [("test/test_typing_seams.py", "test/contracts/test_contract_typing.py")]
_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|"
                     r"warnings?)")
_DURATION = re.compile(r"^([\d.]+)s (?:call|setup|teardown)\s+(\S+?)::")


def test_files() -> list[str]:
    """Every test file under test/, as pytest's defaults find them."""
    found = sorted(ROOT.glob("test/**/test_*.py")) + sorted(ROOT.glob("test/**/*_test.py"))
    return [str(path.relative_to(ROOT)) for path in found]


def weights() -> dict[str, float]:
    """Seconds per file: the last complete run's, else the checked-in table's."""
    table: dict[str, float] = {}
    if WEIGHTS_FILE.exists():
        for line in WEIGHTS_FILE.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                seconds, path = line.split(None, 1)
                table[path.strip()] = float(seconds)
    try:
        table.update(json.loads(CACHE_FILE.read_text()))
    except (OSError, ValueError):
        pass  # no complete run yet on this checkout
    return table


def deal(files: list[str], count: int, seconds: dict[str, float]) -> list[list[str]]:
    """``files`` in at most ``count`` groups of about equal total seconds."""
    units: list[list[str]] = []
    grouped: set[str] = set()
    for together in TOGETHER:
        present = [path for path in together if path in files]
        if present:
            units.append(present)
            grouped.update(present)
    units += [[path] for path in files if path not in grouped]

    def cost(unit: list[str]) -> float:
        return sum(seconds.get(path, DEFAULT_WEIGHT) for path in unit)

    groups: list[list[str]] = [[] for _ in range(min(count, len(units)))]
    loads = [0.0] * len(groups)
    for unit in sorted(units, key=cost, reverse=True):
        emptiest = loads.index(min(loads))
        groups[emptiest] += unit
        loads[emptiest] += cost(unit)
    # each group in collection order, as a plain run would have it
    return [sorted(group) for group in groups if group]


def summary_lines(output: str) -> list[str]:
    """The warnings summary, the short test summary (-ra) and the closing line of
    one session's output (its log is removed when every session passed: a
    warning must be readable here)."""
    lines = output.splitlines()
    warnings: list[str] = []
    begin = next((index for index, line in enumerate(lines)
                  if line.startswith("=") and "warnings summary" in line), None)
    if begin is not None:
        end = next((index for index in range(begin + 1, len(lines))
                    if lines[index].startswith("=")), len(lines))
        warnings = lines[begin:end]
    start = next((index for index, line in enumerate(lines)
                  if "short test summary info" in line), None)
    closing = [line for line in lines[-5:] if _COUNTS.search(line) and line.startswith("=")]
    picked = lines[start:] if start is not None else closing
    return [*warnings, *(line for line in picked if not _DURATION.match(line))]


def counts(output: str) -> dict[str, int]:
    """The counts of the closing line (``{"passed": 12, ...}``)."""
    closing = [line for line in output.splitlines()[-5:]
               if line.startswith("=") and _COUNTS.search(line)]
    found: dict[str, int] = {}
    for number, word in _COUNTS.findall(closing[-1] if closing else ""):
        word = {"error": "errors", "warning": "warnings"}.get(word, word)
        found[word] = found.get(word, 0) + int(number)
    return found


def file_seconds(output: str) -> dict[str, float]:
    """Seconds per file from ``--durations=0`` lines."""
    spent: dict[str, float] = {}
    for line in output.splitlines():
        match = _DURATION.match(line)
        if match:
            spent[match[2]] = spent.get(match[2], 0.0) + float(match[1])
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (options only)")
    options = parser.parse_args()
    files = test_files()
    if not files:
        print("pytest_shards: no test files under test/", flush=True)
        return 5
    groups = deal(files, max(options.shards, 1), weights())
    workdir = Path(tempfile.mkdtemp(prefix="nameko_like_shards_"))
    started = time.monotonic()
    running = []
    for index, group in enumerate(groups):
        log_path = workdir / f"shard-{index}.log"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                   f"--basetemp={workdir / f'tmp-{index}'}", "--durations=0",
                   "--durations-min=0.05", *options.pytest_args, *group]
        log = open(log_path, "w")  # noqa: SIM115 - closed when the shard ends
        running.append((index, group, log_path, log,
                        subprocess.Popen(command, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, env=dict(os.environ))))
        print(f"pytest_shards: shard {index}: {len(group)} files, log {log_path}", flush=True)
    results = []
    while running:
        for entry in list(running):
            index, _group, log_path, log, process = entry
            returncode = process.poll()
            if returncode is None:
                continue
            running.remove(entry)
            log.close()
            output = log_path.read_text(errors="replace")
            results.append((index, returncode, output))
            print(f"pytest_shards: shard {index} exited {returncode} after "
                  f"{time.monotonic() - started:.0f}s: "
                  f"{' '.join(summary_lines(output)[-1:]).strip('= ')}", flush=True)
        time.sleep(0.5)
    results.sort()
    total: dict[str, int] = {}
    spent: dict[str, float] = {}
    failed = False
    for index, returncode, output in results:
        if returncode != 0:
            failed = True
            print(f"\n{'#' * 30} shard {index}: whole output (exit {returncode}) {'#' * 30}")
            print("\n".join(line for line in output.splitlines() if not _DURATION.match(line)))
        for word, number in counts(output).items():
            total[word] = total.get(word, 0) + number
        spent.update(file_seconds(output))
    for index, returncode, output in results:
        print(f"\n--- shard {index} summary (exit {returncode})")
        print("\n".join(summary_lines(output)) or
              "no summary: the session ended without one (pytest-timeout ends a "
              "monkey-patched session with os._exit on a timeout); its output is above")
    if not failed and not options.pytest_args:
        CACHE_FILE.parent.mkdir(exist_ok=True)
        CACHE_FILE.write_text(json.dumps({path: round(seconds, 1) for path, seconds
                                          in sorted(spent.items())}, indent=0))
    elapsed = time.monotonic() - started
    words = ", ".join(f"{total[word]} {word}" for word in
                      ("failed", "passed", "skipped", "errors", "xfailed", "xpassed",
                       "deselected", "warnings") if total.get(word))
    print(f"{'=' * 20} {words or 'no tests ran'} in {elapsed:.2f}s "
          f"({len(results)} pytest processes) {'=' * 20}", flush=True)
    if failed:
        print(f"pytest_shards: logs and temporary files kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if not total.get("passed") and not total.get("failed"):
        return 5
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
