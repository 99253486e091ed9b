"""Name look-ups with eventlet's green DNS off: on a native thread, off the hub.

Each test runs a fresh interpreter, set up as ``nameko_like run`` sets up a
service process (eventlet imported through :mod:`nameko_like.green_resolver`,
then monkey-patched), because eventlet decides about its resolver once, when
it is first imported.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

BOOTSTRAP = """
import json, os, socket, sys
from nameko_like import green_resolver
eventlet = green_resolver.import_eventlet()
installed = green_resolver.install()
eventlet.monkey_patch()
from eventlet import patcher
native_threads = patcher.original("threading").active_count
"""


def _run(*scripts: str, **env: str) -> dict:
    """Run the bootstrap, then ``scripts``; return the JSON its last line prints."""
    environment = {k: v for k, v in os.environ.items() if k != "EVENTLET_NO_GREENDNS"}
    environment.update(env)
    done = subprocess.run([sys.executable, "-W", "ignore", "-c",
                           BOOTSTRAP + "".join(map(textwrap.dedent, scripts))],
                          capture_output=True, text=True, timeout=60, env=environment,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# A resolver that takes 0.6 s, as one waiting on a slow DNS server does: it
# blocks its native thread (the unpatched sleep) before the real look-up.
SLOW_LOOKUP = """
blocking_sleep = patcher.original("time").sleep
blocking_getaddrinfo = socket.getaddrinfo.__wrapped__

def slow_getaddrinfo(*args, **kwargs):
    blocking_sleep(0.6)
    return blocking_getaddrinfo(*args, **kwargs)

ticks = []

def ticker():
    while True:
        eventlet.sleep(0.02)
        ticks.append(1)

def ticks_during(lookup):
    eventlet.sleep(0)  # warm up: the first tick is not the look-up's
    del ticks[:]
    thread = eventlet.spawn(ticker)
    eventlet.sleep(0)
    result = lookup("localhost", 5672, type=socket.SOCK_STREAM)
    count = len(ticks)
    thread.kill()
    return count, result[0][4][1]
"""


def test_a_slow_lookup_leaves_other_greenthreads_running():
    result = _run(SLOW_LOOKUP, """
        off_hub = green_resolver.off_hub("getaddrinfo", slow_getaddrinfo)
        print(json.dumps({"off_hub": ticks_during(off_hub),
                          "in_place": ticks_during(slow_getaddrinfo)}))
    """)
    ticks, port = result["off_hub"]
    assert port == 5672
    # 0.6 s of look-up at a tick every 20 ms: ~30 ticks; a loaded machine
    # runs fewer, but far more than the look-up done on the hub's thread.
    assert ticks >= 5, result
    in_place_ticks, _ = result["in_place"]
    assert in_place_ticks <= 1, result  # the hub stood still: what off_hub avoids


def test_names_resolve_on_a_native_thread_and_addresses_in_place():
    result = _run("""
        before = native_threads()
        by_address = socket.getaddrinfo("127.0.0.1", 5672, type=socket.SOCK_STREAM)
        after_address = native_threads()
        by_name = socket.getaddrinfo("localhost", 5672, type=socket.SOCK_STREAM)
        print(json.dumps({
            "installed": installed,
            "greendns": "eventlet.support.greendns" in sys.modules,
            "dnspython": "dns" in sys.modules,
            "env_left": os.environ.get("EVENTLET_NO_GREENDNS"),
            "address": by_address[0][4][0],
            "threads_for_address": after_address - before,
            "name_resolved": any(entry[4][1] == 5672 for entry in by_name),
            "threads_for_name": native_threads() - after_address,
            "host": socket.gethostbyname("localhost").count(".") == 3,
        }))
    """)
    assert result == {
        "installed": True, "greendns": False, "dnspython": False, "env_left": None,
        "address": "127.0.0.1", "threads_for_address": 0, "name_resolved": True,
        "host": True,
    } | {"threads_for_name": result["threads_for_name"]}
    assert result["threads_for_name"] > 0  # eventlet's native thread pool did it


@pytest.mark.parametrize("call", [
    'socket.getaddrinfo("localhost", 80)',
    'socket.gethostbyname("localhost")',
    'socket.gethostbyname_ex("localhost")',
    'socket.getnameinfo(("127.0.0.1", 80), 0)',
    # eventlet's create_connection looks the name up through its own module
    'eventlet.green.socket.create_connection(("localhost", 9), timeout=1)',
])
def test_every_lookup_by_name_runs_on_a_native_thread(call):
    result = _run(f"""
        import eventlet.green.socket
        before = native_threads()
        try:
            {call}
        except OSError:  # nothing listens on port 9: the look-up happened first
            pass
        print(json.dumps({{"threads_started": native_threads() - before}}))
    """)
    assert result["threads_started"] > 0


def test_lookup_errors_reach_the_caller():
    result = _run("""
        try:
            socket.getaddrinfo("localhost", "no-such-service-name")
        except socket.gaierror as exc:
            print(json.dumps({"error": type(exc).__name__, "errno": exc.errno}))
    """)
    assert result["error"] == "gaierror"
    assert result["errno"] == __import__("socket").EAI_SERVICE


def test_the_environment_can_keep_eventlets_green_dns():
    result = _run("""
        print(json.dumps({"installed": installed,
                          "greendns": "eventlet.support.greendns" in sys.modules,
                          "localhost": socket.gethostbyname("localhost")}))
    """, EVENTLET_NO_GREENDNS="no")
    assert result == {"installed": False, "greendns": True, "localhost": "127.0.0.1"}


def test_an_explicit_no_greendns_gets_the_non_blocking_lookups_too():
    result = _run("""
        print(json.dumps({"installed": installed,
                          "greendns": "eventlet.support.greendns" in sys.modules,
                          "env": os.environ.get("EVENTLET_NO_GREENDNS")}))
    """, EVENTLET_NO_GREENDNS="yes")
    assert result == {"installed": True, "greendns": False, "env": "yes"}


def test_a_forked_child_resolves_after_the_parent_used_the_thread_pool():
    # eventlet's thread pool does not survive a fork: a child that queued its
    # look-up there would wait forever for a thread that stayed in the parent
    result = _run("""
        import signal
        socket.getaddrinfo("localhost", 5672)  # the parent's pool is up
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a hang fails the test instead of blocking it
            address = socket.getaddrinfo("localhost", 5672)[0][4][0]
            os.write(write_end, address.encode())
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        answer = os.read(read_end, 100).decode()
        print(json.dumps({"status": status, "answer": answer}))
    """)
    assert result["status"] == 0
    assert result["answer"] in ("127.0.0.1", "::1")


def test_a_lookup_from_the_hubs_own_greenlet_returns():
    # a timer callback runs in the hub's greenlet, which cannot wait on itself
    result = _run("""
        from eventlet import hubs
        found = []
        hubs.get_hub().schedule_call_global(
            0, lambda: found.append(socket.gethostbyname("localhost")))
        eventlet.sleep(0.1)
        print(json.dumps({"found": found}))
    """)
    assert result["found"] == ["127.0.0.1"]


def test_installing_twice_wraps_once():
    result = _run("""
        again = green_resolver.install()
        wrapped = socket.getaddrinfo.__wrapped_blocking__
        print(json.dumps({"first": installed, "again": again,
                          "wraps_the_os_resolver": not hasattr(wrapped, "__wrapped_blocking__")}))
    """)
    assert result == {"first": True, "again": False, "wraps_the_os_resolver": True}
