"""The Nameko travel tutorial's curl session, as the docs show it, replayed.

``docs/travel.rst`` shows the session verbatim: each ``$ curl ...`` command
and what it prints, ids included. :func:`replay` runs those very commands
with the real ``curl`` against a running gateway and checks that each
prints what the docs show, with two allowances: the ``Date`` header's value,
and the ids, which are new on every run. An id the docs show for the first
time must come back as 32 hex digits (``uuid4().hex``); where the docs show
it again, the id that came back is expected.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS_PAGE = ROOT / "docs" / "travel.rst"
README = ROOT / "examples" / "travel" / "README.md"

#: The command that opens the session, in the docs and the README.
FIRST_COMMAND = """$ curl -i -d '{"airport": "first_airport"}' localhost:8000/airport"""
#: Seconds a GET gets to show what the docs show (see :func:`replay`).
SETTLE_TIMEOUT = 15.0
#: Where the commands send their requests, as the docs write it.
DOCS_ADDRESS = "localhost:8000"

_ID = re.compile(r"\b[0-9a-f]{32}\b")
_DATE = re.compile(r"^Date: .*$", re.MULTILINE)
# What `curl -w` appends after the output: the status and content type.
_MARK = "\n--travel-tutorial--"


@dataclass
class Step:
    """One command of the session and the lines it prints."""

    command: str
    output: str


def _rst_blocks(text: str) -> list[list[str]]:
    """The contents of the ``.. code-block:: console`` blocks of a page."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != ".. code-block:: console":
            continue
        block = []
        for inner in lines[i + 1:]:
            if inner.strip() and not inner.startswith("    "):
                break
            block.append(inner[4:])
        blocks.append(block)
    return blocks


def _markdown_blocks(text: str) -> list[list[str]]:
    """The contents of the fenced ``console`` blocks of a Markdown file."""
    found = re.findall(r"^```console\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    return [block.splitlines() for block in found]


def parse_session(text: str, markdown: bool = False) -> list[Step]:
    """The steps of every console block of ``text`` that shows curl."""
    steps: list[Step] = []
    for block in _markdown_blocks(text) if markdown else _rst_blocks(text):
        while block and not block[0].strip():
            block.pop(0)
        while block and not block[-1].strip():
            block.pop()
        if not block or not block[0].startswith("$ curl "):
            continue
        for line in block:
            if line.startswith("$ "):
                steps.append(Step(line[2:], ""))
            else:
                step = steps[-1]
                step.output = f"{step.output}\n{line}" if step.output else line
    assert steps and steps[0].command == FIRST_COMMAND[2:], "the tutorial is not shown"
    return steps


def docs_session() -> list[Step]:
    """The session as ``docs/travel.rst`` shows it."""
    return parse_session(DOCS_PAGE.read_text())


def readme_session() -> list[Step]:
    """The session as ``examples/travel/README.md`` shows it."""
    return parse_session(README.read_text(), markdown=True)


def _expected_pattern(output: str, ids: dict[str, str]) -> tuple[re.Pattern, list[str]]:
    """A pattern for a step's output, and the new doc ids it captures, in order."""
    pattern, new_ids, position = "", [], 0
    text = _DATE.sub("Date: \0", output)  # a marker no output contains
    for match in _ID.finditer(text):
        pattern += re.escape(text[position:match.start()])
        doc_id = match.group()
        if doc_id in ids:
            pattern += re.escape(ids[doc_id])
        else:
            pattern += "([0-9a-f]{32})"
            new_ids.append(doc_id)
        position = match.end()
    pattern += re.escape(text[position:])
    pattern = pattern.replace("\0", "[^\n]+")
    return re.compile(pattern), new_ids


def run_curl(command: str, address: str) -> tuple[str, int, str]:
    """Run a curl command of the docs against ``address``.

    Returns what it prints (line endings normalised), the status and the
    content type of the answer.
    """
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the tutorial's session needs it")
    argv = shlex.split(command)
    assert argv[0] == "curl", command
    argv = [arg.replace(DOCS_ADDRESS, address) for arg in argv]
    # -sS: no progress meter, but errors; -w: the status and content type
    # after the output, which the commands without -i do not print.
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "15", "-w", _MARK + "%{http_code} %{content_type}",
         *argv[1:]],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, f"{command}: curl failed: {done.stderr}"
    output, _, meta = done.stdout.rpartition(_MARK)
    status, _, content_type = meta.partition(" ")
    return output.replace("\r\n", "\n"), int(status), content_type


def replay(steps: list[Step], address: str) -> dict[str, str]:
    """Run every step against the gateway at ``address`` and check its output.

    A step shown without ``-i`` must answer 200: as text (``text/plain;
    charset=utf-8``) when its answer is an id, as JSON otherwise; with
    ``-i`` the status line and headers shown are checked as text. A step
    without a body (a GET) is retried for up to ``SETTLE_TIMEOUT`` seconds
    while it does not match yet: the stats count trips from events, a
    moment after the trip is stored. Returns the ids that came back, by the
    id the docs show in their place.
    """
    ids: dict[str, str] = {}
    for step in steps:
        unknown = set(_ID.findall(step.command)) - set(ids)
        assert not unknown, f"{step.command}: uses ids no earlier answer gave"
        command = _ID.sub(lambda match: ids[match.group()], step.command)
        pattern, new_ids = _expected_pattern(step.output, ids)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            output, status, content_type = run_curl(command, address)
            match = pattern.fullmatch(output)
            if match or " -d " in command or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert match, f"$ {command}\nprinted:\n{output}\nthe docs show:\n{step.output}"
        for doc_id, real_id in zip(new_ids, match.groups(), strict=True):
            assert real_id not in ids.values(), f"{real_id} came back twice"
            ids[doc_id] = real_id
        if not output.startswith("HTTP/"):
            assert status == 200, command
            if re.fullmatch("[0-9a-f]{32}", output):
                assert content_type == "text/plain; charset=utf-8", command
            else:
                assert content_type == "application/json", command
    return ids
