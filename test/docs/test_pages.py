"""The docs show only code that exists and is run by this test suite."""

import re
from pathlib import Path

import pytest

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES_DIR = DOCS_DIR / "examples"
TESTS_DIR = Path(__file__).resolve().parent

INCLUDE = re.compile(r"^\.\. literalinclude:: (\S+)$", re.MULTILINE)


def includes():
    """(page, included path) for every literalinclude of every page."""
    for page in sorted(DOCS_DIR.glob("*.rst")):
        for target in INCLUDE.findall(page.read_text()):
            yield page.name, (page.parent / target).resolve()


def examples():
    return sorted(path for path in EXAMPLES_DIR.iterdir() if path.suffix in (".py", ".yaml"))


def test_every_include_exists():
    missing = [(page, str(path)) for page, path in includes() if not path.is_file()]
    assert not missing


@pytest.mark.parametrize("example", examples(), ids=lambda path: path.name)
def test_every_example_is_shown(example):
    assert example in {path for _, path in includes()}, f"no page includes {example.name}"


@pytest.mark.parametrize("example", examples(), ids=lambda path: path.name)
def test_every_example_is_run_by_a_test(example):
    tests = "\n".join(path.read_text() for path in TESTS_DIR.glob("test_*.py"))
    names = (f"from {example.stem} import", f"import {example.stem}\n", f'"{example.name}"')
    assert any(name in tests for name in names), f"no test in test/docs uses {example.name}"
