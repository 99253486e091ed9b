"""The examples of docs/nameko_alias.rst, run with NAMEKO_LIKE_ALIAS_NAMEKO=1.

They run as subprocesses: the alias changes ``sys.modules`` for good. The
real extensions from PyPI are exercised by test/alias.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"
ENV = {**os.environ, "NAMEKO_LIKE_ALIAS_NAMEKO": "1", "PYTHONWARNINGS": "ignore",
       "PYTHONUNBUFFERED": "1"}
START_TIMEOUT = 30
SERVICE_MODULE = Path("alias_nameko_service.py").stem


def test_alias_script() -> None:
    """The script imports nameko_like first, then runs Nameko code on it."""
    done = subprocess.run(
        [sys.executable, "alias_script.py"], cwd=EXAMPLES_DIR, capture_output=True,
        text=True, timeout=60, env=ENV, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2\n"


def test_alias_nameko_service_under_nameko_like_run(tmp_path: Path) -> None:
    """``nameko_like run alias_nameko_service`` starts the Nameko-written service."""
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nameko_like", "run", SERVICE_MODULE, "--broker", "memory://"],
            cwd=EXAMPLES_DIR, env=ENV, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while "running services visits" not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(START_TIMEOUT) == 0, log_path.read_text()
    output = log_path.read_text()
    assert output.count("NAMEKO_LIKE_ALIAS_NAMEKO=1: `import nameko` resolves to "
                        "nameko_like") == 1, output
