"""``Storage``: a dependency provider that keeps records (this example's).

It is also the sample to read before writing a dependency of your own. A
dependency provider is declared on the service class::

    class AirportsService:
        name = "airports"
        store = Storage("airports")

and the container then calls it at fixed points:

* ``setup()`` once, before the service starts: open connections here, so a
  wrong config fails at start-up rather than on the first request;
* ``get_dependency(worker_ctx)`` for every worker: what it returns is what
  the service method sees as ``self.store``;
* ``stop()`` on a graceful shutdown, once no worker runs any more, and
  ``kill()`` on an immediate one: release what ``setup()`` acquired.

``__init__`` only stores its arguments: the container copies each
declaration (by calling the class again with the same arguments) for every
container that runs the service, so work done there would run at import time
and be shared by mistake.

Two backends keep the data, chosen by the config:

* ``REDIS_URI`` set: Redis, through the ``redis`` package, with every key
  prefixed by ``REDIS_KEY_PREFIX`` (default ``travel:``);
* otherwise: an SQLite file at ``TRAVEL_DB_PATH`` (default ``travel.sqlite``
  in the working directory), which needs no server at all.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from eventlet.semaphore import Semaphore

from nameko_like.extensions import DependencyProvider

#: Config key: a Redis URL (``redis://host:6379/0``); empty or absent means
#: SQLite.
REDIS_URI_CONFIG_KEY = "REDIS_URI"
#: Config key: the prefix of every Redis key this example writes.
REDIS_KEY_PREFIX_CONFIG_KEY = "REDIS_KEY_PREFIX"
DEFAULT_REDIS_KEY_PREFIX = "travel:"
#: Config key: where the SQLite file lives when Redis is not configured.
DB_PATH_CONFIG_KEY = "TRAVEL_DB_PATH"
DEFAULT_DB_PATH = "travel.sqlite"


class Store:
    """What a worker sees: records of one kind, each a JSON-able dict.

    Records are written once and never changed; each may also have named
    counters (``departures``, ``arrivals``) that only ever go up.
    """

    def __init__(self, backend: Backend, kind: str) -> None:
        self._backend = backend
        self.kind = kind

    def add(self, record: dict) -> str:
        """Store ``record`` under a new id and return the id.

        Ids are ``uuid4().hex``, 32 hex digits, as in the Nameko tutorial.
        """
        record_id = uuid.uuid4().hex
        self._backend.put(self.kind, record_id, json.dumps(record))
        return record_id

    def get(self, record_id: str) -> dict | None:
        """The record stored under ``record_id``, or None."""
        text = self._backend.get(self.kind, record_id)
        return None if text is None else json.loads(text)

    def increment(self, record_id: str, counter: str, by: int = 1) -> int:
        """Add ``by`` to a counter of ``record_id`` (from 0); return it."""
        return self._backend.increment(self.kind, record_id, counter, by)

    def counters(self, record_id: str) -> dict[str, int]:
        """Every counter of ``record_id`` that was ever incremented."""
        return self._backend.counters(self.kind, record_id)


class Backend:
    """Where records live. Records are JSON text; ids are unique per kind."""

    def put(self, kind: str, record_id: str, text: str) -> None:
        """Store ``text`` under ``(kind, record_id)``."""
        raise NotImplementedError

    def get(self, kind: str, record_id: str) -> str | None:
        """The text stored under ``(kind, record_id)``, or None."""
        raise NotImplementedError

    def increment(
        self, kind: str, record_id: str, counter: str, by: int
    ) -> int:
        """Add ``by`` to a counter, atomically; return its new value."""
        raise NotImplementedError

    def counters(self, kind: str, record_id: str) -> dict[str, int]:
        """All counters of ``(kind, record_id)``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""


class RedisBackend(Backend):
    """Records as Redis strings, counters as one Redis hash per record.

    The ``redis`` client keeps a pool of connections and is safe to share
    between greenthreads: under ``nameko_like run`` the process is
    monkey-patched, so its sockets and locks are green and a worker waiting
    for Redis lets the others run.
    """

    def __init__(self, uri: str, prefix: str) -> None:
        import redis  # only needed when Redis is configured

        self.prefix = prefix
        self.client = redis.Redis.from_url(uri, decode_responses=True)

    def _key(self, kind: str, record_id: str) -> str:
        return f"{self.prefix}{kind}:{record_id}"

    def put(self, kind: str, record_id: str, text: str) -> None:
        self.client.set(self._key(kind, record_id), text)

    def get(self, kind: str, record_id: str) -> str | None:
        return self.client.get(self._key(kind, record_id))

    def increment(
        self, kind: str, record_id: str, counter: str, by: int
    ) -> int:
        # HINCRBY is atomic on the server: several processes may count at
        # once.
        key = self._key(kind, record_id) + ":counters"
        return int(self.client.hincrby(key, counter, by))

    def counters(self, kind: str, record_id: str) -> dict[str, int]:
        found = self.client.hgetall(self._key(kind, record_id) + ":counters")
        return {name: int(value) for name, value in found.items()}

    def close(self) -> None:
        self.client.close()


class SqliteBackend(Backend):
    """Records and counters in two tables of one SQLite file.

    Concurrency: all workers of a container share one connection. sqlite3
    calls do not yield to other greenthreads, but a lock still guards each
    use of the connection, so that a statement and its commit always run
    together even if a future change makes something in between yield.
    Several processes (or containers) may open the same file: WAL mode lets
    readers run beside a writer, and the busy timeout makes a writer wait
    for another's transaction instead of failing.
    """

    #: Seconds a write waits for another connection's transaction to end.
    busy_timeout = 10.0

    def __init__(self, path: str) -> None:
        self._lock = Semaphore()
        # isolation_level=None: no implicit transactions; each statement
        # below commits on its own, or in an explicit BEGIN ... COMMIT.
        self._db = sqlite3.connect(
            path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records ("
                " kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,"
                " PRIMARY KEY (kind, id))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS counters ("
                " kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,"
                " value INTEGER NOT NULL, PRIMARY KEY (kind, id, name))"
            )

    def put(self, kind: str, record_id: str, text: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO records (kind, id, data) VALUES (?, ?, ?)",
                (kind, record_id, text),
            )

    def get(self, kind: str, record_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM records WHERE kind = ? AND id = ?",
                (kind, record_id),
            ).fetchone()
        return None if row is None else row[0]

    def increment(
        self, kind: str, record_id: str, counter: str, by: int
    ) -> int:
        # One statement that adds and reads back: atomic even when another
        # process increments the same counter at the same moment.
        with self._lock:
            (value,) = self._db.execute(
                "INSERT INTO counters (kind, id, name, value)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (kind, id, name)"
                " DO UPDATE SET value = value + excluded.value"
                " RETURNING value",
                (kind, record_id, counter, by),
            ).fetchone()
        return int(value)

    def counters(self, kind: str, record_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value FROM counters WHERE kind = ? AND id = ?",
                (kind, record_id),
            ).fetchall()
        return {name: int(value) for name, value in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_backend(config: dict) -> Backend:
    """The backend ``config`` asks for: Redis if ``REDIS_URI`` is set,
    else SQLite."""
    redis_uri = config.get(REDIS_URI_CONFIG_KEY)
    if redis_uri:
        prefix = (
            config.get(REDIS_KEY_PREFIX_CONFIG_KEY) or DEFAULT_REDIS_KEY_PREFIX
        )
        return RedisBackend(redis_uri, prefix)
    return SqliteBackend(config.get(DB_PATH_CONFIG_KEY) or DEFAULT_DB_PATH)


class Storage(DependencyProvider):
    """Injects a :class:`Store` for records of ``kind`` into every worker.

    Args:
        kind: what the records are ("airports", "trips"); it keeps the
            records of different services apart in a shared database.
    """

    def __init__(self, kind: str) -> None:
        # Only remember the arguments (see the module docstring).
        self.kind = kind
        self.backend: Backend | None = None

    def setup(self) -> None:
        """Open the backend the container's config names."""
        self.backend = open_backend(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> Store:
        """A Store over the shared backend; cheap, so one per worker."""
        assert self.backend is not None, "Storage used before setup()"
        return Store(self.backend, self.kind)

    def stop(self) -> None:
        """Close the backend: called after the last worker has finished."""
        self._close()

    def kill(self) -> None:
        """Close the backend at once."""
        self._close()

    def _close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
