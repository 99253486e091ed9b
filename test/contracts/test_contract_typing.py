"""Typed RPC clients, as mypy sees them: typing_clients.py marks what it must say.

``# R: <type>`` marks a ``reveal_type`` line, ``# E: <code>`` a line that
must be reported; any other error in that file fails the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKED = "typing_clients.py"
_MARKER = re.compile(r"\S  # (?P<kind>[RE]): (?P<text>.+?)\s*$")
_OUTPUT = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): (?P<severity>error|note): "
                     r"(?P<message>.*?)(?:\s+\[(?P<code>[a-z-]+)\])?$")


def test_typed_clients_carry_the_signatures():
    expected: dict[int, tuple[str, str]] = {}
    for number, line in enumerate((HERE / CHECKED).read_text().splitlines(), start=1):
        match = _MARKER.search(line)
        if match:
            expected[number] = (match["kind"], match["text"])
    assert len(expected) == 7
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--show-error-codes", "--no-pretty",
         "--no-color-output", str(Path("test", "contracts", CHECKED))],
        cwd=HERE.parent.parent, capture_output=True, text=True, timeout=600)
    found: dict[int, tuple[str, str]] = {}
    for line in done.stdout.splitlines():
        match = _OUTPUT.match(line)
        if match is None or Path(match["path"]).name != CHECKED:
            continue
        if match["severity"] == "note":
            revealed = re.match(r'Revealed type is "(.*)"', match["message"])
            if revealed:
                found[int(match["line"])] = ("R", revealed[1].replace("builtins.", ""))
        else:
            found[int(match["line"])] = ("E", match["code"] or "misc")
    assert found == expected, done.stdout
