"""A complete extension: services that run a method for each file dropped
into a directory.

* ``InboxPoller``, a shared extension: one per container watches the
  directory named by the ``INBOX_DIR`` config key;
* ``FileEntrypoint`` (``@on_file(pattern)``), the entrypoint: it registers
  with the poller and runs a worker for each new file matching ``pattern``;
* ``Archive``, a dependency provider: it moves each file, once handled,
  to ``done/`` or, if its worker failed, to ``failed/``.

Writers should create a file under another name and rename it when
complete, so that it is never read half written.
"""

import fnmatch
import os
import shutil

from eventlet import sleep

from nameko_like.extensions import (
    DependencyProvider,
    Entrypoint,
    ProviderCollector,
    SharedExtension,
)

#: Config key: the directory to watch.
INBOX_DIR_CONFIG_KEY = "INBOX_DIR"
#: Config key: seconds between two looks at the directory.
INBOX_POLL_INTERVAL_CONFIG_KEY = "INBOX_POLL_INTERVAL"


class InboxPoller(ProviderCollector, SharedExtension):
    """Watches ``INBOX_DIR`` for the container; shared by its ``@on_file`` methods."""

    def __init__(self):
        # Only attributes here: the container builds its own copy by calling
        # the class again, and work done now would happen at import time.
        super().__init__()
        self.directory = None
        self.entrypoints = []
        self.seen = set()
        self.thread = None

    def setup(self):
        config = self.container.config
        self.directory = config[INBOX_DIR_CONFIG_KEY]
        self.interval = config.get(INBOX_POLL_INTERVAL_CONFIG_KEY, 1.0)

    def register_provider(self, entrypoint):
        super().register_provider(entrypoint)
        self.entrypoints.append(entrypoint)

    def unregister_provider(self, entrypoint):
        self.entrypoints.remove(entrypoint)
        super().unregister_provider(entrypoint)

    def start(self):
        # A managed thread is killed when the container stops, and kills the
        # container if it raises: a broken poller is never silently dead.
        self.thread = self.container.spawn_managed_thread(self.poll, identifier="inbox")

    def stop(self):
        # ProviderCollector.stop waits until every entrypoint unregistered.
        super().stop()
        self.kill()

    def kill(self):
        if self.thread is not None:
            self.thread.kill()

    def poll(self):
        while True:
            for name in sorted(os.listdir(self.directory)):
                path = os.path.join(self.directory, name)
                if name in self.seen or not os.path.isfile(path):
                    continue
                for entrypoint in self.entrypoints:
                    if fnmatch.fnmatch(name, entrypoint.pattern):
                        self.seen.add(name)
                        entrypoint.handle_file(path)
                        break
            sleep(self.interval)


class FileEntrypoint(Entrypoint):
    """Runs the decorated method with the path of each new matching file."""

    poller = InboxPoller()

    def __init__(self, pattern="*", **kwargs):
        self.pattern = pattern
        super().__init__(**kwargs)

    def setup(self):
        self.poller.register_provider(self)

    def stop(self):
        self.poller.unregister_provider(self)

    def handle_file(self, path):
        # Blocks while every worker is busy, which slows the poller down
        # rather than piling up work.
        self.container.spawn_worker(self, (path,), {})


on_file = FileEntrypoint.decorator


class Archive(DependencyProvider):
    """Files each handled file away under ``done/`` or ``failed/``."""

    def setup(self):
        self.directory = self.container.config[INBOX_DIR_CONFIG_KEY]
        for outcome in ("done", "failed"):
            os.makedirs(os.path.join(self.directory, outcome), exist_ok=True)

    def get_dependency(self, worker_ctx):
        # Workers may read what was handled before.
        return os.path.join(self.directory, "done")

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if not isinstance(worker_ctx.entrypoint, FileEntrypoint):
            return
        (path,) = worker_ctx.args
        outcome = "done" if exc_info is None else "failed"
        shutil.move(path, os.path.join(self.directory, outcome, os.path.basename(path)))


class InvoiceService:
    name = "invoices"

    archive = Archive()

    @on_file("*.csv")
    def import_invoices(self, path):
        with open(path) as lines:
            invoices = [line.split(",") for line in lines.read().splitlines()]
        total = sum(int(amount) for _, amount in invoices)
        return f"{len(invoices)} invoices, {total} in total"
