"""What the docs show of the travel example: the tutorial's session, code that fits.

The session itself is replayed against running services by test_travel.py;
these tests need no services.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import travel_tutorial
from travel_tutorial import DOCS_PAGE

#: The widest line a code block of the travel page shows without scrolling.
MAX_COLUMNS = 79

ID_1, ID_2, TRIP = (
    "f2bddf0138cf4e8ea46a6f2c93e8a3e8",
    "41a0e1bb7d2c4c8e8f3b3e6a0f5d9c27",
    "9b7e3c5d1a2f4e6b8c0d2e4f6a8b0c1d",
)


def test_readme_shows_the_docs_session():
    assert travel_tutorial.readme_session() == travel_tutorial.docs_session()


def test_the_session_is_the_tutorials():
    steps = travel_tutorial.docs_session()
    commands = [step.command for step in steps[:6]]
    assert commands == [
        """curl -i -d '{"airport": "first_airport"}' localhost:8000/airport""",
        f"curl localhost:8000/airport/{ID_1}",
        """curl -i -d '{"airport": "second_airport"}' localhost:8000/airport""",
        f"curl localhost:8000/airport/{ID_2}",
        (f"""curl -d '{{"airport_from": "{ID_1}", "airport_to": "{ID_2}"}}' """
         "localhost:8000/trip"),
        f"curl localhost:8000/trip/{TRIP}",
    ]
    assert steps[0].output.splitlines()[:3] == [
        "HTTP/1.1 200 OK",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: 32",
    ]
    assert steps[0].output.endswith(f"\n\n{ID_1}")
    assert steps[1].output == '{"airport": "first_airport"}'
    assert steps[4].output == TRIP
    assert steps[5].output == f'{{"trip": {{"from": "{ID_1}", "to": "{ID_2}"}}}}'


FIRST_ANSWER = (
    "HTTP/1.1 200 OK\nContent-Type: text/plain; charset=utf-8\nContent-Length: 32\n"
    "Date: Fri, 04 Dec 2026 21:39:57 GMT\n\n96ce99620fc44cf697f02ad9c82b7bd7"
)


@pytest.mark.parametrize("answer, matches", [
    (FIRST_ANSWER, True),
    (FIRST_ANSWER.replace("200 OK", "201 CREATED"), False),
    (FIRST_ANSWER.replace("text/plain; charset=utf-8", "application/json"), False),
    (FIRST_ANSWER.replace("96ce99620fc44cf697f02ad9c82b7bd7", "96ce99620fc4"), False),
    (FIRST_ANSWER + "\n", False),
])
def test_the_replay_checks_each_answer(answer, matches):
    step = travel_tutorial.docs_session()[0]
    pattern, new_ids = travel_tutorial._expected_pattern(step.output, {})
    assert new_ids == [ID_1]
    assert bool(pattern.fullmatch(answer)) is matches


def test_the_replay_expects_ids_it_was_given():
    pattern, new_ids = travel_tutorial._expected_pattern(
        f'{{"from": "{ID_1}"}}', {ID_1: "a" * 32})
    assert new_ids == []
    assert pattern.fullmatch(f'{{"from": "{"a" * 32}"}}')
    assert not pattern.fullmatch(f'{{"from": "{"b" * 32}"}}')


def included_files() -> list[Path]:
    page = DOCS_PAGE.read_text()
    targets = re.findall(r"^\.\. literalinclude:: (\S+)$", page, re.MULTILINE)
    return [(DOCS_PAGE.parent / target).resolve() for target in targets]


def test_the_travel_page_shows_every_file_of_the_example():
    shown = {path.name for path in included_files()}
    assert {"gateway.py", "airports.py", "trips.py", "storage.py", "errors.py",
            "config.yaml", "docker-compose.yml", "Dockerfile"} <= shown


@pytest.mark.parametrize("path", included_files(), ids=lambda path: path.name)
def test_code_shown_fits_the_page(path):
    long = [
        f"{number}: {line}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > MAX_COLUMNS
    ]
    assert not long, f"lines over {MAX_COLUMNS} columns in {path.name}:\n" + "\n".join(long)
