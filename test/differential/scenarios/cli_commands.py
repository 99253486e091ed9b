"""``nameko`` vs ``nameko_like``: the command line, run as a user runs it.

Every command runs as ``<side's python> -m <framework> ...`` in this side's
working directory, where the service modules and config files are written.
The report keeps exit statuses and the essential part of each output; where
the wording differs on purpose (nameko_like's one-line errors), a case
reports what the message must convey rather than its words.
"""

import os
import signal
import subprocess
import textwrap
import time  # green: _side monkey-patches

from _side import AMQP_URI, FRAMEWORK, WORKDIR, config, module, run_main

standalone_rpc = module("standalone.rpc")

PYTHON = os.environ["DIFF_PYTHON"]
#: a port nothing listens on
REFUSED_URI = "amqp://guest:guest@127.0.0.1:1/"
#: how long an unreachable broker may keep a command waiting
REFUSED_TIMEOUT = 8

SERVICE_MODULE = f"""\
from {FRAMEWORK}.events import event_handler
from {FRAMEWORK}.rpc import rpc


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, who="world"):
        return "hello " + who

    @event_handler("shell", "greeted")
    def on_greeted(self, payload):
        with open("greeted.txt", "w") as file:
            file.write(payload["who"])


class Counter:
    name = "counter"

    @rpc
    def count(self, *items):
        return len(items)
"""

NO_SERVICES_MODULE = """\
class NotAService:
    def method(self):
        return 1


VALUE = 42
"""

CONFIG_WITH_ENV = """\
AMQP_URI: ${DIFF_TEST_BROKER:amqp://guest:guest@localhost/default}
max_workers: ${DIFF_TEST_WORKERS:7}
plain: just text
nested:
  host: ${DIFF_TEST_HOST:localhost}
  port: ${DIFF_TEST_PORT:5672}
  list: [1, two]
"""


def write(name, text):
    with open(os.path.join(WORKDIR, name), "w") as file:
        file.write(textwrap.dedent(text))


def command(*args, stdin=None, timeout=60, env=None):
    """Run the side's command to completion: its status, stdout and stderr."""
    process = start(*args, stdin=subprocess.PIPE, env=env)
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    # eventlet's green subprocess raises its own TimeoutExpired class
    except Exception as exc:
        if "TimeoutExpired" not in type(exc).__name__:
            raise
        process.kill()
        stdout, stderr = process.communicate()
        return {"status": "timeout", "stdout": stdout, "stderr": stderr}
    return {"status": process.returncode, "stdout": stdout, "stderr": stderr}


def start(*args, stdin=subprocess.DEVNULL, env=None):
    """Start the side's command with output captured as text."""
    return subprocess.Popen([PYTHON, "-m", FRAMEWORK, *args], cwd=WORKDIR, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))


def read_when_there(name, timeout=10):
    path = os.path.join(WORKDIR, name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return file.read()


def shell_session(result):
    """The essential of a piped shell: status, printed lines, the error raised.

    Nameko feeds the pipe to an interactive console, which writes a banner
    to stderr and a ``>>>`` prompt before each line's output; nameko_like
    runs the pipe as a script, without either (a deliberate difference,
    docs/migrating.rst). Both stop at the first exception with status 1.
    """
    lines = []
    for line in result["stdout"].splitlines():
        while line.startswith((">>> ", "... ")):
            line = line[4:]
        if line.strip() not in ("", ">>>", "..."):
            lines.append(line)
    last = result["stderr"].strip().splitlines()[-1:] if result["status"] else []
    error = last[0].split(":")[0].rsplit(".", 1)[-1] if last else None
    return {"status": result["status"], "printed": lines, "error": error}


def failure(result, *names):
    """The essential of a failed command: that it failed, and what it named.

    Nameko prints a CommandError as ``Error: ...`` on stdout and exits 0, and
    lets other errors out as tracebacks (status 1); nameko_like exits 1 with
    one line on stderr for all of them, on purpose (docs/migrating.rst). So
    the Nameko side's ``Error:`` counts as a failure here.
    """
    output = result["stdout"] + result["stderr"]
    failed = result["status"] != 0 or result["stdout"].startswith("Error: ")
    return {"failed": failed, "names": {name: name in output for name in names}}


def refused(result):
    """An unreachable broker: nameko_like exits 1 at once, Nameko retries forever.

    A deliberate difference (docs/migrating.rst), so each side is checked
    for its own behaviour; both name the refusal.
    """
    expected = "timeout" if FRAMEWORK == "nameko" else 1
    output = result["stdout"] + result["stderr"]
    return {"as_expected": result["status"] == expected,
            "says_refused": "ECONNREFUSED" in output and "127.0.0.1:1" in output}


def shown_config(result):
    """show-config's output as data: Nameko sorts the keys, we keep the file's order."""
    import yaml

    return {"status": result["status"], "config": yaml.safe_load(result["stdout"])}


def main():
    write("services.py", SERVICE_MODULE)
    write("empty.py", NO_SERVICES_MODULE)
    write("config.yaml", CONFIG_WITH_ENV)
    write("broken.yaml", "AMQP_URI: [unclosed\n")
    define = shown_config(command("show-config", "--config", "config.yaml",
                                  "--define", "max_workers=9"))
    # Nameko has no --define (its parser ignores unknown options); ours
    # applies it, on purpose (docs/migrating.rst): each side checked for its own
    define["as_expected"] = define.pop("config")["max_workers"] == (
        7 if FRAMEWORK == "nameko" else 9)
    seen = {
        "missing_module": failure(command("run", "no_such_module", "--broker", AMQP_URI),
                                  "no_such_module"),
        "no_services": failure(command("run", "empty", "--broker", AMQP_URI), "'empty'"),
        "missing_class": failure(command("run", "services:Nope", "--broker", AMQP_URI),
                                 "Nope", "'services'"),
        "file_path": failure(command("run", "services.py", "--broker", AMQP_URI),
                             "did you mean 'services'?"),
        "missing_config": failure(command("run", "services", "--config", "nowhere.yaml"),
                                  "nowhere.yaml"),
        "broken_config": failure(command("run", "services", "--config", "broken.yaml"),
                                 "broken.yaml", "but got '<stream end>'"),
        "refused_broker": refused(command("run", "services", "--broker", REFUSED_URI,
                                          timeout=REFUSED_TIMEOUT)),
        "show_config": shown_config(command(
            "show-config", "--config", "config.yaml",
            env={"DIFF_TEST_WORKERS": "3", "DIFF_TEST_HOST": "rabbit"})),
        # no --config: both read ./config.yaml
        "show_config_default": shown_config(command("show-config")),
        "show_config_define": define,
    }
    seen.update(running_services())
    return seen


def wait_until_serving(process, timeout=30):
    """Call both services until they answer (they run) or the command ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=2) as cluster:
            try:
                answers = [cluster.greeter.hello("probe"), cluster.counter.count(1)]
            except Exception:  # noqa: BLE001 - not up yet (UnknownService, timeout)
                pass
            else:
                # Nameko's run lets a Ctrl-C that comes before start() has
                # returned escape as KeyboardInterrupt; the signals here test
                # stopping services that run, so give start() time to return
                time.sleep(1)
                return answers
        time.sleep(0.2)
    return None


def stop(process, signum):
    """Send ``signum``; the exit status once the command ended."""
    process.send_signal(signum)
    try:
        process.wait(timeout=30)
    except Exception:  # noqa: BLE001 - green TimeoutExpired
        process.kill()
        process.wait()
        return "timeout"
    return process.returncode


def running_services():
    """``run`` against the side's broker, ``shell`` calling it, then a stop signal."""
    seen = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        process = start("run", "services", "--broker", AMQP_URI)
        seen[f"run_serves_{signum.name}"] = wait_until_serving(process)
        if signum == signal.SIGTERM:
            seen.update({name: shell_session(result) for name, result in shells().items()})
            seen["event_handled"] = read_when_there("greeted.txt")
        seen[f"run_stopped_by_{signum.name}"] = stop(process, signum)
    return seen


def shells():
    """Piped ``shell`` sessions calling the running services."""
    return {
        "shell_broker": command(
            "shell", "--broker", AMQP_URI,
            stdin="print(n.rpc.greeter.hello())\nprint(n.rpc.counter.count(1, 2, 3))\n"),
        "shell_config": command(
            "shell", "--config", "config.yaml", env={"DIFF_TEST_BROKER": AMQP_URI},
            stdin="print(n.rpc['greeter'].hello('config'))\nprint(n.config['max_workers'])\n"),
        "shell_raises": command(
            "shell", "--broker", AMQP_URI,
            stdin="print('before')\nn.rpc.greeter.hello(1, 2, 3)\nprint('after')\n"),
        "shell_event": command(
            "shell", "--broker", AMQP_URI,
            stdin="n.dispatch_event('shell', 'greeted', {'who': 'piped'})\nprint('sent')\n"),
    }


run_main(main)
