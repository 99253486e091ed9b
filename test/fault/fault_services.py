"""Services the fault tier runs in subprocesses.

Every method appends ``<kind> <id> <pid> <unix time>`` to
``$FAULT_RECORD_DIR/<pid>.rec`` when it starts (one ``write`` of one short
line to a file opened for appending, so lines of concurrent workers and
processes never mix). The tests read these records to count what ran, where,
and how often.
"""

import gc
import os
import signal
import sys
import time
import traceback

import greenlet
from kombu import Queue

from nameko_like.events import event_handler
from nameko_like.exceptions import RpcConnectionError, RpcTimeout
from nameko_like.messaging import consume
from nameko_like.rpc import RpcProxy, rpc


def _dump_greenthreads(signum, frame):
    """``kill -USR1 <pid>``: print where every greenthread waits (diagnosis)."""
    for thread in gc.get_objects():
        if isinstance(thread, greenlet.greenlet) and thread.gr_frame is not None:
            sys.stderr.write("".join(traceback.format_stack(thread.gr_frame)) + "-----\n")
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, _dump_greenthreads)


def record(kind, item_id):
    """Note that ``kind`` work on ``item_id`` ran in this process."""
    path = os.path.join(os.environ["FAULT_RECORD_DIR"], f"{os.getpid()}.rec")
    with open(path, "a") as out:
        out.write(f"{kind} {item_id} {os.getpid()} {time.time():.3f}\n")


class Pingable:
    @rpc
    def ping(self):
        return os.getpid()


class Backend(Pingable):
    name = "fault_backend"

    @rpc
    def work(self, call_id, delay=0.0):
        record("backend", call_id)
        if delay:
            time.sleep(delay)
        return {"id": call_id, "pid": os.getpid()}


class Frontend(Pingable):
    """Relays every call to the backend: one RPC hop inside the cluster."""

    name = "fault_frontend"
    backend = RpcProxy("fault_backend", timeout=4)

    # expected: logged as one warning line each, not as a traceback
    @rpc(expected_exceptions=(RpcConnectionError, RpcTimeout))
    def relay(self, call_id):
        record("frontend", call_id)
        return self.backend.work(call_id)


class Listener(Pingable):
    name = "fault_listener"

    @event_handler("fault_source", "tick")
    def on_tick(self, payload):
        record("event", payload["id"])


class Worker(Pingable):
    """Run as two instances sharing one RPC queue and one event queue."""

    name = "fault_worker"

    @rpc
    def slow(self, call_id, seconds):
        record("call", call_id)
        time.sleep(seconds)
        record("done", call_id)
        return {"id": call_id, "pid": os.getpid()}

    @event_handler("fault_source", "job")
    def on_job(self, payload):
        record("job", payload["id"])
        time.sleep(payload["seconds"])
        record("jobdone", payload["id"])


#: the queue of :meth:`PoisonTarget.always_fails`
ALWAYS_FAILS_QUEUE = "fault-always-fails"


class PoisonTarget(Pingable):
    """Takes malformed messages on its RPC queue, event queue and a plain queue."""

    name = "fault_poison"

    @rpc
    def echo(self, value):
        record("rpc", value)
        return value

    @event_handler("fault_poison_source", "note")
    def on_note(self, payload):
        record("event", payload["id"] if isinstance(payload, dict) else "non-dict")

    @consume(Queue(ALWAYS_FAILS_QUEUE, durable=True), requeue_on_error=True)
    def always_fails(self, body):
        record("attempt", body["id"])
        raise ValueError("this handler always fails")


class Slowpoke(Pingable):
    name = "fault_slowpoke"

    @rpc
    def nap(self, call_id, seconds):
        record("start", call_id)
        time.sleep(seconds)
        record("done", call_id)
        return {"id": call_id, "pid": os.getpid()}


# -- channel errors, broker restarts, cancels, redeliveries (issue 12) ---------

from nameko_like.amqp.publish_channel import PublishChannel  # noqa: E402
from nameko_like.extensions import DependencyProvider  # noqa: E402

#: An exchange that is never declared: publishing to it closes the channel (404).
MISSING_EXCHANGE = "fault-missing-exchange"


class ContainerPublishChannel(DependencyProvider):
    """The publish channel the container's replies and events go through."""

    def get_dependency(self, worker_ctx: object) -> PublishChannel:
        return self.container.publish_pool.get(self.container.config)


class ChannelFaults(Pingable):
    """Methods whose publish or reply the broker refuses, beside plain work."""

    name = "fault_channel"
    publish_channel = ContainerPublishChannel()

    @rpc
    def work(self, call_id):
        record("work", call_id)
        return call_id

    @rpc
    def misfire(self, call_id):
        """Publish to an exchange that does not exist and wait for the answer."""
        record("misfire", call_id)
        channel = self.publish_channel
        channel.wait(channel.publish({"id": call_id}, exchange=MISSING_EXCHANGE,
                                     routing_key="nowhere"), timeout=10)
        return "published"

    @rpc
    def blob(self, call_id, size):
        """A reply of ``size`` characters (over the broker's max_message_size)."""
        record("blob", call_id)
        return "x" * size


class Hog(Pingable):
    """A handler that holds the CPU (never yields) for ``seconds``."""

    name = "fault_hog"

    @rpc
    def hog(self, call_id, seconds):
        record("hog", call_id)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return call_id
