"""Nameko community extensions from PyPI, unchanged, on nameko_like through the alias.

Everything here runs in ``.venv-alias`` (see conftest.py), where the real
Nameko 2.14.1 is installed as the extensions' requirement.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration

REDIS_URI = "redis://localhost:6379/0"
STARTUP_MESSAGE = ("NAMEKO_LIKE_ALIAS_NAMEKO=1: `import nameko` resolves to nameko_like "
                   "(the installed Nameko 2.14.1 is hidden)")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted after."""
    prefix = f"nameko_like_alias_test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URI)
    keys = list(client.scan_iter(prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def _notes_database(path: Path) -> str:
    # The schema the service expects, made as a deployment would, beforehand.
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text VARCHAR(200) NOT NULL)")
    connection.close()
    return f"sqlite:///{path}"


def test_sqlalchemy_and_redis_services_run(alias_run: Any, rabbit_config: dict,
                                           tmp_path: Path, redis_prefix: str) -> None:
    """Both services serve real calls; rows land in SQLite and counts in Redis."""
    database = tmp_path / "notes.sqlite"
    run = alias_run(
        ["alias_notes:NotesService", "alias_counters:CountersService"],
        DB_URIS={"notes:Base": _notes_database(database)},
        REDIS_URIS={"development": REDIS_URI},
        COUNTER_PREFIX=redis_prefix,
    )
    run.wait_for_queues(rabbit_config["AMQP_URI"], "rpc-notes", "rpc-counters")

    with ClusterRpcProxy(rabbit_config, timeout=15) as cluster:
        assert cluster.notes.add("buy tea") == {"id": 1, "added": 1}
        assert cluster.notes.add("call Ada") == {"id": 2, "added": 2}
        assert cluster.notes.texts() == ["buy tea", "call Ada"]
        assert cluster.counters.get(redis_prefix + "notes_added") == 2

    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
    connection.close()
    assert rows == [(1, "buy tea"), (2, "call Ada")]
    client = redis.Redis.from_url(REDIS_URI, decode_responses=True)
    assert client.get(redis_prefix + "notes_added") == "2"
    client.close()

    assert run.stop() == 0, run.log()
    log = run.log()
    assert log.count("NAMEKO_LIKE_ALIAS_NAMEKO") == 1, log
    assert STARTUP_MESSAGE in log
    assert "WARNING" in next(line for line in log.splitlines() if STARTUP_MESSAGE in line)


@pytest.mark.parametrize("command", [
    pytest.param(["-m", "nameko_like", "test"], id="nameko_like-test"),
    pytest.param(["-m", "pytest", "-p", "nameko_like"], id="pytest-p-nameko_like"),
])
def test_nameko_style_tests_run_beside_nameko_plugin(run_alias_python: Any, redis_prefix: str,
                                                     command: list[str]) -> None:
    """pytest loads Nameko's plugin entry point too; the alias makes it inert."""
    done = run_alias_python(*command, "-q", "check_alias_plugin.py",
                            ALIAS_CHECK_REDIS_URI=REDIS_URI,
                            ALIAS_CHECK_KEY=redis_prefix + "plugin")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("3 passed in"), done.stdout


def test_without_the_env_var_nameko_is_the_real_one(run_alias_python: Any) -> None:
    """The alias is opt-in: unset, `import nameko` gives the installed Nameko."""
    done = run_alias_python("-c", (
        "import json, nameko_like, nameko, nameko.rpc\n"
        "print(json.dumps([nameko.__file__, nameko is nameko_like,"
        " hasattr(nameko.rpc, 'RpcConsumer')]))"
    ), alias=False)
    assert done.returncode == 0, done.stderr
    nameko_file, same, nameko_only = json.loads(done.stdout)
    assert Path(nameko_file).parts[-3:] == ("site-packages", "nameko", "__init__.py")
    assert (same, nameko_only) == (False, True)
    assert "NAMEKO_LIKE_ALIAS_NAMEKO" not in done.stderr


def test_nameko_submodule_we_lack(run_alias_python: Any) -> None:
    """Nameko has nameko.log_helpers, we do not: a clear ImportError names the alias."""
    done = run_alias_python("-c", (
        "import nameko_like\n"
        "try:\n"
        "    import nameko.log_helpers\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, '|', exc)\n"
    ))
    assert done.returncode == 0, done.stderr
    kind, name, _, message = done.stdout.split(" ", 3)
    assert (kind, name) == ("ModuleNotFoundError", "nameko.log_helpers")
    assert "NAMEKO_LIKE_ALIAS_NAMEKO=1" in message
    assert "no 'nameko_like.log_helpers'" in message


def test_real_nameko_imported_first_is_refused(run_alias_python: Any) -> None:
    """Importing the real Nameko before nameko_like, alias on, is an error naming the fix."""
    done = run_alias_python("-c", "import nameko.extensions\nimport nameko_like\n")
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: NAMEKO_LIKE_ALIAS_NAMEKO=1 but the installed "
                                "Nameko was imported before nameko_like"), done.stderr
    assert "`pytest -p nameko_like`" in last_line


def test_pytest_loading_nameko_plugin_first_names_the_fix(run_alias_python: Any) -> None:
    """If pytest loads Nameko's plugin before ours, the run stops with the fix named."""
    done = run_alias_python("-m", "pytest", "-p", "pytest_nameko", "-q", "check_alias_plugin.py")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "the installed Nameko was imported before nameko_like" in output, output
    assert "`pytest -p nameko_like`" in output
