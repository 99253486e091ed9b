"""``nameko_like run`` refusing to start: one line on stderr, exit status 1.

No broker needed: every one of these stops before connecting (or fails to).
"""

import pytest

MEMORY = ("--broker", "memory://")

SERVICE = """
    from nameko_like.timer import timer


    class Ticker:
        name = "ticker"

        @timer(interval=60)
        def tick(self):
            pass
"""


def assert_one_line_error(result, message):
    """The run failed with exactly ``message`` as its only output line."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"nameko_like run: error: {message}"]
    assert "Traceback" not in result.stderr


def test_missing_module(cli):
    result = cli("run", "no_such_module", *MEMORY)
    assert_one_line_error(
        result, "module 'no_such_module' not found "
                "(looked in the current directory and on sys.path)")


def test_missing_module_inside_a_package(cli):
    cli.write("pkg/__init__.py", "")
    result = cli("run", "pkg.nope", *MEMORY)
    assert_one_line_error(
        result, "module 'pkg.nope' not found (looked in the current directory and on sys.path)")


def test_file_path_instead_of_module(cli):
    cli.write("ticker.py", SERVICE)
    result = cli("run", "ticker.py", *MEMORY)
    assert_one_line_error(
        result, "module 'ticker.py' not found; give a dotted module name, not a file path: "
                "did you mean 'ticker'?")


def test_file_path_in_a_package_suggests_the_dotted_name(cli):
    cli.write("pkg/__init__.py", "")
    cli.write("pkg/ticker.py", SERVICE)
    result = cli("run", "pkg/ticker.py", *MEMORY)
    assert_one_line_error(
        result, "module 'pkg/ticker.py' not found; give a dotted module name, not a file path: "
                "did you mean 'pkg.ticker'?")


def test_missing_class(cli):
    cli.write("ticker.py", SERVICE)
    result = cli("run", "ticker:Nope", *MEMORY)
    assert_one_line_error(result, "module 'ticker' has no attribute 'Nope'")


def test_named_class_without_a_name(cli):
    cli.write("ticker.py", "class Anonymous:\n    pass\n")
    result = cli("run", "ticker:Anonymous", *MEMORY)
    assert_one_line_error(
        result, "ticker:Anonymous is not a service class: it has no `name` attribute")


def test_import_error_inside_the_module_is_shown(cli):
    cli.write("broken.py", "import os\nfrom os import not_there\n")
    result = cli("run", "broken", *MEMORY)
    assert_one_line_error(
        result, "importing module 'broken' failed: ImportError: cannot import name "
                f"'not_there' from 'os' ({__import__('os').__file__}) (broken.py:2)")


def test_missing_dependency_of_the_module_is_not_module_not_found(cli):
    cli.write("broken.py", "import os\nimport no_such_dependency\n")
    result = cli("run", "broken", *MEMORY)
    assert_one_line_error(
        result, "importing module 'broken' failed: ModuleNotFoundError: "
                "No module named 'no_such_dependency' (broken.py:2)")


def test_other_error_inside_the_module(cli):
    cli.write("broken.py", "x = 1\nraise RuntimeError('bad\\nthing')\n")
    result = cli("run", "broken", *MEMORY)
    assert_one_line_error(
        result, "importing module 'broken' failed: RuntimeError: bad thing (broken.py:2)")


def test_syntax_error_in_the_module(cli):
    cli.write("broken.py", "def f(:\n    pass\n")
    result = cli("run", "broken", *MEMORY)
    assert_one_line_error(
        result, "importing module 'broken' failed: SyntaxError: invalid syntax (broken.py, line 1)")


def test_no_services_in_module(cli):
    cli.write("plain.py", """
        class NotAService:
            name = "plain"   # a name but no entrypoint

            def method(self):
                pass
    """)
    result = cli("run", "plain", *MEMORY)
    assert_one_line_error(
        result, "no services found in module 'plain': a service is a class with a `name` "
                "attribute and at least one entrypoint")


def test_two_services_with_one_name(cli):
    cli.write("ticker.py", SERVICE)
    cli.write("again.py", SERVICE)
    result = cli("run", "ticker", "again", *MEMORY)
    assert_one_line_error(result, "a different service class named 'ticker' (Ticker) was "
                                  "already added to this runner; give Ticker another `name`")


def test_missing_config_file(cli):
    cli.write("ticker.py", SERVICE)
    result = cli("run", "ticker", "--config", "missing.yaml", *MEMORY)
    assert_one_line_error(result, "missing.yaml: config file not found")


def test_bad_yaml(cli):
    cli.write("ticker.py", SERVICE)
    cli.write("config.yaml", "max_workers: 10\nWEB: [1\n")
    result = cli("run", "ticker", "--config", "config.yaml", *MEMORY)
    assert_one_line_error(
        result, "config.yaml:3: invalid YAML: expected ',' or ']', but got '<stream end>' "
                "(while parsing a flow sequence that began at line 2: WEB: [1)")


def test_bad_logging_config_names_key_and_file(cli):
    cli.write("ticker.py", SERVICE)
    cli.write("config.yaml", """
        LOGGING:
          version: 1
          handlers:
            console: {class: no_such_module.Handler}
    """)
    result = cli("run", "ticker", "--config", "config.yaml", *MEMORY)
    assert_one_line_error(
        result, "config.yaml: key 'LOGGING' is not a valid logging config: Unable to configure "
                "handler 'console' (Cannot resolve 'no_such_module.Handler': "
                "No module named 'no_such_module')")


def test_bad_define(cli):
    cli.write("ticker.py", SERVICE)
    result = cli("run", "ticker", "--define", "max_workers", *MEMORY)
    assert_one_line_error(
        result, "--define expects KEY=VALUE (e.g. WEB.PORT=9000), got 'max_workers'")


@pytest.mark.parametrize("uri, shown", [
    ("amqp://guest:guest@127.0.0.1:1/", "amqp://guest:********@127.0.0.1:1/"),
    ("amqp://user:secret@127.0.0.1:1/vhost", "amqp://user:********@127.0.0.1:1/vhost"),
])
def test_unreachable_broker(cli, uri, shown):
    cli.write("ticker.py", SERVICE)
    result = cli("run", "ticker", "--broker", uri)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"nameko_like run: error: cannot reach the AMQP broker at {shown} ")
    assert "--broker memory://" in line
    assert "secret" not in result.stderr


def test_backdoor_port_in_use(cli):
    import socket

    cli.write("ticker.py", SERVICE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("run", "ticker", "--backdoor-port", str(port), *MEMORY)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"nameko_like run: error: cannot open the backdoor on 127.0.0.1:{port}: "
        "Address already in use")
