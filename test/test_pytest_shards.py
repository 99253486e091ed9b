"""scripts/pytest_shards.py: how it deals test files to sessions and reads their output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pytest_shards.py"


def _load():
    spec = importlib.util.spec_from_file_location("pytest_shards", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shards = _load()


def test_files_are_dealt_slowest_first_to_the_least_loaded_group():
    seconds = {"a.py": 60.0, "b.py": 30.0, "c.py": 30.0, "d.py": 10.0, "e.py": 10.0}
    groups = shards.deal(sorted(seconds), 2, seconds)
    loads = sorted(sum(seconds[path] for path in group) for group in groups)
    assert loads == [70.0, 70.0]
    assert sorted(path for group in groups for path in group) == sorted(seconds)
    # each group keeps collection order
    assert all(group == sorted(group) for group in groups)


def test_files_sharing_mypy_cache_stay_in_one_group_and_unknown_files_count_one_second():
    together = list(shards.TOGETHER[0])
    files = [*together, *(f"test/t{index}.py" for index in range(6))]
    groups = shards.deal(files, 4, {})
    holding = [group for group in groups if set(together) & set(group)]
    assert len(holding) == 1 and set(together) <= set(holding[0])
    assert len(groups) == 4
    assert sorted(len(group) for group in groups) == [2, 2, 2, 2]


def test_no_more_groups_than_files():
    assert shards.deal(["test/only.py"], 4, {}) == [["test/only.py"]]


OUTPUT = """\
test/x.py ..F                                                       [100%]
============================== slowest durations ===============================
2.50s call     test/x.py::test_slow
0.30s setup    test/y.py::test_other
1.00s teardown test/x.py::test_slow
=========================== short test summary info ============================
FAILED test/x.py::test_bad - assert 1 == 2
============= 1 failed, 2 passed, 1 skipped, 1 warning in 4.00s ==============
"""


def test_the_closing_line_is_counted():
    assert shards.counts(OUTPUT) == {"failed": 1, "passed": 2, "skipped": 1, "warnings": 1}
    assert shards.counts("Timeout\n") == {}


def test_the_summary_is_the_short_summary_and_closing_line():
    assert shards.summary_lines(OUTPUT) == OUTPUT.splitlines()[-3:]


def test_the_summary_shows_the_warnings_summary_too():
    warned = OUTPUT.replace(
        "=========================== short test summary info",
        "============================== warnings summary ===============================\n"
        "test/x.py::test_slow\n"
        "  ResourceWarning: unclosed <socket>\n"
        "=========================== short test summary info")
    summary = shards.summary_lines(warned)
    assert summary[:3] == warned.splitlines()[5:8]
    assert summary[3:] == warned.splitlines()[-3:]


def test_seconds_per_file_add_up_setup_call_and_teardown():
    assert shards.file_seconds(OUTPUT) == {"test/x.py": 3.5, "test/y.py": 0.3}
