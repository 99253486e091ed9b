"""The CLI's Python API, in process: setup_parser, run.import_service, run.main.

What Nameko's own tests and tools drive directly: the parser's commands and
options, the service discovery of ``run``, and ``run.main(args)`` with a
parsed namespace, stopped by SIGTERM as ``nameko run`` is.
"""

import os
import signal
import sys
import textwrap
import time  # green: _side monkey-patches

import eventlet
from _side import AMQP_URI, FRAMEWORK, WORKDIR, config, describe_error, module, run_main

cli_main = module("cli.main")
cli_run = module("cli.run")
standalone_rpc = module("standalone.rpc")

MODULES = {
    "api_services": f"""
        from {FRAMEWORK}.rpc import rpc

        VALUE = 42


        class Zebra:
            name = "zebra"

            @rpc
            def stripes(self):
                return "black and white"


        class Aardvark:
            name = "aardvark"

            @rpc
            def dig(self, depth):
                return depth * 2
    """,
    "api_empty": """
        class NotAService:
            def method(self):
                return 1
    """,
    "api_broken_import": """
        import no_such_dependency_anywhere
    """,
}


def write_modules():
    for name, source in MODULES.items():
        with open(os.path.join(WORKDIR, f"{name}.py"), "w") as file:
            file.write(textwrap.dedent(source))
    if WORKDIR not in sys.path:
        sys.path.insert(0, WORKDIR)


def parsed(argv):
    """The shared parts of what setup_parser() makes of ``argv``."""
    try:
        args = cli_main.setup_parser().parse_args(argv)
    except SystemExit as exc:
        return {"exit": exc.code}
    seen = {name: getattr(args, name) for name in ("services", "broker", "backdoor_port",
                                                   "interface") if hasattr(args, name)}
    if hasattr(args, "config"):
        # Nameko's --config takes one file (a string, '' for none); ours is
        # repeatable (a list): compared as the list of files on purpose
        config = args.config
        seen["config"] = ([config] if config else []) if isinstance(config, str) else config
    if "broker" in seen and not any(arg.startswith("--broker") for arg in argv):
        # Nameko's --broker defaults to localhost and is ignored with --config;
        # ours defaults to None and overrides the config's AMQP_URI
        # (docs/migrating.rst): only a given --broker is compared
        del seen["broker"]
    seen["main_is_callable"] = callable(getattr(args, "main", None))
    return seen


#: Commands nameko_like has that Nameko has not (docs/cli.rst): extras on
#: top of Nameko's set, which must all be there.
OUR_OWN_COMMANDS = {"dlq", "docs"}


def commands():
    parser = cli_main.setup_parser()
    [subparsers] = [action for action in parser._actions if hasattr(action, "choices")
                    and isinstance(action.choices, dict)]
    return sorted(set(subparsers.choices) - OUR_OWN_COMMANDS)


def imported(path):
    """What import_service(path) returns or raises."""
    try:
        found = cli_run.import_service(path)
    except Exception as exc:  # noqa: BLE001 - every error is an observation
        error = describe_error(exc)
        return {"raised": error["type"]}
    # Nameko lists a module's services by name, nameko_like in the order the
    # module defines them (docs/migrating.rst): compared as a set
    return {"value": sorted(cls.__name__ for cls in found)}


def import_errors():
    seen = {path: imported(path) for path in (
        "api_services", "api_services:Zebra", "api_services:Nope", "api_services:VALUE",
        "api_empty", "no_such_module_anywhere", "api_services.py")}
    # A module that fails to import one of its own dependencies: Nameko lets
    # the ImportError out (a traceback from the command), nameko_like makes
    # it a one-line CommandError naming module and line, on purpose
    # (docs/migrating.rst). Each side is checked for its own behaviour.
    expected = "ModuleNotFoundError" if FRAMEWORK == "nameko" else "CommandError"
    seen["broken_import_as_expected"] = imported("api_broken_import") == {"raised": expected}
    return seen


def run_main_with_parsed_args():
    """run.main(args), args from setup_parser(); serves until SIGTERM."""
    args = cli_main.setup_parser().parse_args(["run", "api_services", "--broker", AMQP_URI])
    runner = eventlet.spawn(cli_run.main, args)
    answer = None
    deadline = time.monotonic() + 30
    while answer is None and time.monotonic() < deadline and not runner.dead:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=2) as cluster:
            try:
                answer = [cluster.aardvark.dig(3), cluster.zebra.stripes()]
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    try:
        with eventlet.Timeout(30):
            returned = runner.wait()
    except eventlet.Timeout:
        returned = "still running"
    # Nameko's run.main returns None, ours the exit status: 0 is "returned"
    return {"answer": answer, "returned": "returned" if returned in (None, 0) else returned}


def main():
    write_modules()
    return {
        "commands": commands(),
        "version_flag": parsed(["-v"]),
        "run": parsed(["run", "api_services", "--broker", "amqp://somewhere/"]),
        "run_options": parsed(["run", "a", "b:Service", "--config", "c.yaml",
                               "--backdoor-port", "3000"]),
        "run_no_services": parsed(["run"]),
        "shell": parsed(["shell", "--interface", "plain", "--broker", "amqp://x/"]),
        "shell_bad_interface": parsed(["shell", "--interface", "nope"]),
        "import_service": import_errors(),
        "run_main": run_main_with_parsed_args(),
    }


run_main(main)
