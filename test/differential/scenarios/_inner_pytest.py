"""Run a test file in an inner pytest session on this side, with its framework's plugin.

The scenarios of ``testing_*.py`` write one test file, written once for both
frameworks with ``FW`` standing for the framework's package, and run it with
the side's python (``DIFF_PYTHON``). What each test did (passed, failed,
error, skipped) is read from the session's JUnit XML; what tests chose to
record with the ``record`` fixture (see ``CONFTEST``) comes back too.
"""

import json
import os
import subprocess
import sys
from xml.etree import ElementTree

from _side import AMQP_URI, FRAMEWORK, WORKDIR

#: Every inner session's conftest: both frameworks' tests need the patch
#: (Nameko 2.14's plugin no longer applies it), and ``record(key, value)``
#: keeps an observation for the report.
CONFTEST = '''
import eventlet
eventlet.monkey_patch()

import json
import pytest

_RECORDED = {}


@pytest.fixture
def record():
    return _RECORDED.__setitem__


def pytest_sessionfinish(session):
    with open("recorded.json", "w") as out:
        json.dump(_RECORDED, out, sort_keys=True, default=repr)
'''

API_URI = os.environ.get("DIFF_RABBIT_API", "http://guest:guest@localhost:15672")


def run_inner(name, source, *args, timeout=120):
    """Write ``source`` (``FW`` replaced) as ``test_<name>.py`` and run pytest on it.

    Returns ``{"outcomes": {test: outcome}, "recorded": {...}, "exit": code}``.
    """
    folder = os.path.join(WORKDIR, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "conftest.py"), "w") as out:
        out.write(CONFTEST)
    test_file = os.path.join(folder, f"test_{name}.py")
    with open(test_file, "w") as out:
        out.write(source.replace("FW", FRAMEWORK))
    junit = os.path.join(folder, "junit.xml")
    command = [os.environ["DIFF_PYTHON"], "-m", "pytest", test_file, "-p", "no:cacheprovider",
               "-p", "no:randomly", f"--junitxml={junit}", "-rA", "-q",
               *(args or ("--amqp-uri", AMQP_URI, "--rabbit-ctl-uri", API_URI))]
    if FRAMEWORK == "nameko":
        command.append("--suppress-nameko-eventlet-notification")
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout,
                          check=False)
    # for the harness's failure message
    sys.stderr.write(f"--- inner pytest {name}:\n{done.stdout[-8000:]}{done.stderr[-3000:]}\n")
    recorded_path = os.path.join(folder, "recorded.json")
    recorded = {}
    if os.path.exists(recorded_path):
        with open(recorded_path) as stream:
            recorded = json.load(stream)
    return {"outcomes": _outcomes(junit), "recorded": recorded, "exit": done.returncode}


def _outcomes(junit):
    if not os.path.exists(junit):
        return None
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = kinds[0] if kinds else "passed"
        name = case.get("name")
        # a teardown error comes as a second entry of the same test
        if name in outcomes and outcomes[name] != "passed":
            continue
        outcomes[name] = outcome
    return outcomes
