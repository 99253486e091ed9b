"""The typed seams hold: mypy (the venv's) is run on test/typing/check_decorators.py.

That file marks what mypy must say about each line: ``# R: <type>`` for a
``reveal_type`` (decorated methods keep their signatures, ``bind()``
returns the class it was called on) and ``# E: <code>`` for a line that
must be reported (a wrong argument type to a decorated method, a bad
decorator argument, something that is not a delivered message). Any
other error in that file fails the test too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKED = Path("test", "typing", "check_decorators.py")

# an inline comment after code (two spaces, as PEP 8 has it), not the docstring
_MARKER = re.compile(r"\S  # (?P<kind>[RE]): (?P<text>.+?)\s*$")
_OUTPUT = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*?)"
    r"(?:\s+\[(?P<code>[a-z-]+)\])?$"
)
_REVEALED = re.compile(r'^Revealed type is "(?P<type>.*)"$')


def _markers() -> tuple[dict[int, str], dict[int, set[str]]]:
    """(line -> revealed type, line -> error codes) the checked file expects."""
    reveals: dict[int, str] = {}
    errors: dict[int, set[str]] = {}
    text = (REPO / CHECKED).read_text()
    for number, line in enumerate(text.splitlines(), start=1):
        match = _MARKER.search(line)
        if match is None:
            continue
        if match["kind"] == "R":
            reveals[number] = match["text"]
        else:
            errors[number] = {code.strip() for code in match["text"].split(",")}
    return reveals, errors


def _normalise(type_text: str) -> str:
    # Older mypy releases spell builtins with their module.
    return type_text.replace("builtins.", "")


@pytest.fixture(scope="module")
def mypy_report() -> tuple[dict[int, str], dict[int, set[str]]]:
    """(line -> revealed type, line -> error codes) mypy reports for the file."""
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--show-error-codes",
         "--no-pretty", "--no-color-output", str(CHECKED)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    # 1: errors found (the file has some on purpose); 0 would mean none was.
    assert completed.returncode == 1, (
        f"mypy exited {completed.returncode}:\n{completed.stdout}{completed.stderr}")
    reveals: dict[int, str] = {}
    errors: dict[int, set[str]] = {}
    for line in completed.stdout.splitlines():
        match = _OUTPUT.match(line)
        if match is None or Path(match["path"]) != CHECKED:
            continue  # errors elsewhere (the package) are the package test's business
        number = int(match["line"])
        if match["severity"] == "note":
            revealed = _REVEALED.match(match["message"])
            if revealed is not None:
                reveals[number] = _normalise(revealed["type"])
        else:
            errors.setdefault(number, set()).add(match["code"] or "misc")
    return reveals, errors


def test_the_checked_file_marks_reveals_and_errors() -> None:
    reveals, errors = _markers()
    assert len(reveals) >= 10
    assert len(errors) >= 8


def test_decorated_methods_keep_their_signatures(
    mypy_report: tuple[dict[int, str], dict[int, set[str]]],
) -> None:
    expected, _ = _markers()
    revealed, _ = mypy_report
    mismatches = {
        line: (want, revealed.get(line))
        for line, want in expected.items()
        if revealed.get(line) != want
    }
    assert not mismatches, f"line: (expected, revealed by mypy): {mismatches}"


def test_wrong_calls_are_reported_and_nothing_else(
    mypy_report: tuple[dict[int, str], dict[int, set[str]]],
) -> None:
    _, expected = _markers()
    _, reported = mypy_report
    missing = {line: codes for line, codes in expected.items() if reported.get(line) != codes}
    unexpected = {line: codes for line, codes in reported.items() if line not in expected}
    assert not missing, (
        f"lines whose mypy errors differ from the marked codes: "
        f"{ {line: (codes, reported.get(line)) for line, codes in missing.items()} }")
    assert not unexpected, f"errors on unmarked lines: {unexpected}"
