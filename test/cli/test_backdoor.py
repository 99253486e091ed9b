"""``nameko_like run --backdoor-port`` and ``nameko_like backdoor``. No broker needed."""

import signal
import socket

TICKER = """
    from nameko_like.timer import timer


    class Ticker:
        name = "ticker"

        @timer(interval=60)
        def tick(self):
            pass
"""

LISTENING = r"backdoor listening on 127\.0\.0\.1:(?P<port>\d+)"


def test_backdoor_evaluates_expressions_in_the_running_process(cli):
    cli.write("ticker.py", TICKER)
    run = cli.start("run", "ticker", "--broker", "memory://", "--backdoor-port", "0")
    # Bound to localhost: no host was given.
    port = run.wait_for_log(LISTENING)["port"]
    run.wait_for_log("running services ticker")

    # Several lines at once, as a pipe delivers them: none may be lost.
    result = cli("backdoor", port, input="""\
runner.service_names
6 * 7
for i in range(2):
    print("line", i)

exit()
""")
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "['ticker']" in output
    assert "42" in output
    assert "line 0\nline 1" in output
    assert "exit() here would stop the services, not the backdoor" in output

    # The services outlive the backdoor session, and a new session starts afresh.
    result = cli("backdoor", f"127.0.0.1:{port}", input="runner.service_names\n")
    assert "['ticker']" in result.stdout
    run.wait_for_log(r"backdoor connection from 127\.0\.0\.1:\d+ closed")

    run.signal(signal.SIGTERM)
    assert run.wait() == 0


def test_nothing_listening_is_one_line(cli):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it
    result = cli("backdoor", str(port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"nameko_like backdoor: error: cannot connect to a backdoor at 127.0.0.1:{port} "
        f"(Connection refused); is a service running with --backdoor-port {port}?"]
