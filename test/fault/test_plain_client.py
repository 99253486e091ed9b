"""A plain (not monkey-patched) script's long-lived proxy and a silent broker.

The broker's Erlang VM is frozen (SIGSTOP) for longer than two heartbeats,
then thawed (SIGCONT): its sockets stay open but nothing answers, which is
what a hung broker or a dead network path looks like. A script with one
``ClusterRpcProxy(timeout=5)`` keeps calling a service throughout. Its
calls must fail within their timeout (never hang), and succeed again once
the broker answers, with the same proxy. Then the network path between
script and broker dies silently (a relay process stops forwarding and
never closes the connections it held, as a partition or a dead NAT entry
does): once it heals for new connections only, the script must find its
connection dead by its heartbeats and reconnect (before heartbeats, every
later call timed out on the dead connection). Last, the script idles for
longer than two heartbeats (the broker drops its connection): its next
call must reconnect and succeed at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.fault

HEARTBEAT = 2
CALL_TIMEOUT = 5.0
#: How much longer than its timeout a call may take to fail.
TIMEOUT_MARGIN = 1.5
#: How long the broker is frozen (over two heartbeats).
FREEZE_SECONDS = 10.0
RECOVERY_DEADLINE = 40.0
#: Idle spell of the script: past two heartbeats, the broker drops it.
IDLE_SECONDS = 3 * HEARTBEAT + 2

#: The client script: calls ``fault_backend.ping`` over one proxy until
#: told to stop; writes one JSON line per call. No eventlet monkey patch.
SCRIPT = """
import json, os, sys, time
from nameko_like.standalone.rpc import ClusterRpcProxy

config = json.loads(sys.argv[1])
out_path, control = sys.argv[2], sys.argv[3]
assert "eventlet" not in sys.modules or not __import__("eventlet").patcher.is_monkey_patched(
    "socket")
with ClusterRpcProxy(config, timeout=float(sys.argv[4])) as cluster, \\
        open(out_path, "a", buffering=1) as out:
    while not os.path.exists(os.path.join(control, "stop")):
        if os.path.exists(os.path.join(control, "idle")):
            time.sleep(0.05)
            continue
        started = time.monotonic()
        error = None
        try:
            cluster.fault_backend.ping()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        out.write(json.dumps({"started": started, "duration": time.monotonic() - started,
                              "error": error}) + "\\n")
        time.sleep(0.2)
"""


#: A TCP relay to the broker whose path can die without a sound (its own
#: process: the test process is monkey patched). It prints its port.
#: SIGUSR1 cuts: every connection it holds stops forwarding for good (what
#: either side sends is dropped, nothing is closed), and connections made
#: until SIGUSR2 are accepted but never forwarded. After SIGUSR2 new
#: connections work again; the cut ones stay dead.
RELAY = """
import signal, socket, sys, threading

upstream = ("127.0.0.1", int(sys.argv[1]))
listener = socket.create_server(("127.0.0.1", 0))
state = {"cutting": False}
links = []

def cut(*_):
    state["cutting"] = True
    for link in links:
        link["dead"] = True

def heal(*_):
    state["cutting"] = False

signal.signal(signal.SIGUSR1, cut)
signal.signal(signal.SIGUSR2, heal)

def pump(link, src, dst):
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if link["dead"] or dst is None:
            if not data:
                return  # a dead path tells the other side nothing
            continue
        try:
            if not data:
                dst.shutdown(socket.SHUT_WR)
                return
            dst.sendall(data)
        except OSError:
            return

print(listener.getsockname()[1], flush=True)
while True:
    client, _ = listener.accept()
    link = {"dead": state["cutting"]}
    links.append(link)
    if link["dead"]:
        threading.Thread(target=pump, args=(link, client, None), daemon=True).start()
        continue
    server = socket.create_connection(upstream)
    for src, dst in ((client, server), (server, client)):
        threading.Thread(target=pump, args=(link, src, dst), daemon=True).start()
"""


def _calls(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _ok_after(path: Path, since: float) -> list[dict]:
    return [call for call in _calls(path) if call["started"] >= since and call["error"] is None]


def test_plain_client_survives_a_silent_broker(fault_broker, fault_config, spawn_service,
                                               wait_ready, wait_until, tmp_path):
    config = dict(fault_config, HEARTBEAT=HEARTBEAT)
    spawn_service("fault_services:Backend", fault_config)
    wait_ready(fault_config, "fault_backend")
    beam_pid = int(fault_broker.rabbitmqctl("eval", "os:getpid().").stdout.strip().strip('"'))

    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(fault_broker.port)],
                             stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None
    relay_port = int(relay.stdout.readline())
    config["AMQP_URI"] = config["AMQP_URI"].replace(f":{fault_broker.port}/", f":{relay_port}/")
    out, control = tmp_path / "calls.jsonl", tmp_path / "control"
    control.mkdir()
    script = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(config), str(out), str(control),
         str(CALL_TIMEOUT)], stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(_ok_after(out, 0)) >= 3, 30, message="script calls")

        frozen_at = time.monotonic()
        os.kill(beam_pid, signal.SIGSTOP)
        try:
            time.sleep(FREEZE_SECONDS)
        finally:
            os.kill(beam_pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        wait_until(lambda: len(_ok_after(out, thawed_at)) >= 5, RECOVERY_DEADLINE,
                   message="calls succeed after the broker answers again")

        # the path dies silently, then heals for new connections only
        cut_at = time.monotonic()
        relay.send_signal(signal.SIGUSR1)
        time.sleep(FREEZE_SECONDS)
        relay.send_signal(signal.SIGUSR2)
        healed_at = time.monotonic()
        wait_until(lambda: len(_ok_after(out, healed_at)) >= 5, RECOVERY_DEADLINE,
                   message="calls succeed after the network path heals")

        # idle past two heartbeats: the broker drops the silent client
        (control / "idle").touch()
        time.sleep(0.5 + 5 * 0.2)  # the call in flight ends
        idle_from = time.monotonic()
        time.sleep(IDLE_SECONDS)
        (control / "idle").unlink()
        wait_until(lambda: len([c for c in _calls(out) if c["started"] >= idle_from]) >= 3, 30,
                   message="calls after the idle spell")
        (control / "stop").touch()
        assert script.wait(timeout=CALL_TIMEOUT + 10) == 0, script.stderr.read()
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
        relay.kill()
        relay.wait()

    calls = _calls(out)
    during = [c for c in calls if frozen_at <= c["started"] + c["duration"]
              and c["started"] <= thawed_at]
    failed_during = [c for c in during if c["error"] is not None]
    after_idle = [c for c in calls if c["started"] >= idle_from]
    cut = [c for c in calls if cut_at <= c["started"] + c["duration"]
           and c["started"] <= healed_at]
    print(f"path cut: {len(cut)} calls overlapping, errors "
          f"{[c['error'][:60] for c in cut if c['error']]}; first ok after heal at "
          f"{min(c['started'] for c in _ok_after(out, healed_at)) - healed_at:.2f}s")
    print(f"{len(calls)} calls; {len(during)} overlapping the freeze, {len(failed_during)} "
          f"failed: {[c['error'][:60] for c in failed_during]}; max latency "
          f"{max(c['duration'] for c in calls):.2f}s; first after thaw ok at "
          f"{min(c['started'] for c in _ok_after(out, thawed_at)) - thawed_at:.2f}s; after idle: "
          f"{[(round(c['duration'], 3), c['error']) for c in after_idle]}")
    # the freeze was felt, and no call outlived its timeout
    assert failed_during, during
    assert max(c["duration"] for c in calls) < CALL_TIMEOUT + TIMEOUT_MARGIN
    # the same proxy works again after the broker answers (5 calls waited for above)
    assert len(_ok_after(out, thawed_at)) >= 5
    # the same proxy works again after the path heals
    assert [c for c in cut if c["error"] is not None], cut
    assert len(_ok_after(out, healed_at)) >= 5
    # after the idle spell the first call reconnects and succeeds at once
    assert after_idle[0]["error"] is None, after_idle
    assert after_idle[0]["duration"] < 2.0, after_idle
    assert all(c["error"] is None for c in after_idle), after_idle
