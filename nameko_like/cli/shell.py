"""``nameko_like shell``: a Python prompt connected to the services' broker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nameko_like.cli.options import add_config_options, load_cli_config
from nameko_like.constants import DEFAULT_SHELL_RPC_TIMEOUT, SHELL_RPC_TIMEOUT_CONFIG_KEY

if TYPE_CHECKING:
    # only for annotations: the proxy's modules load after monkey-patching
    from nameko_like.standalone.rpc import ClusterProxy

NAME = "shell"
HELP = "open a Python shell that can call services"
DESCRIPTION = """\
Open an interactive Python shell where `n` talks to the services on the broker:

  n.rpc.<service>.<method>(...)                     call a service over RPC
  n.dispatch_event(service, event_type, payload)    dispatch an event as `service`
  n.config                                          the config in use

Each RPC call waits at most --timeout seconds for its reply (config
SHELL_RPC_TIMEOUT, default 30; 0 waits forever), then raises RpcTimeout: a
service whose queue exists but that is not running never answers.

IPython or bpython is used when installed (or as --interface says), else the
plain Python prompt. When stdin is not a terminal, it is run as a script
instead, with `n` defined; an exception in the script ends the command with
its traceback and exit status 1.
"""
EPILOG = """\
examples:
  nameko_like shell --config config.yaml
  nameko_like shell --broker amqp://guest:guest@localhost/ --interface python
  echo 'print(n.rpc.greeter.hello("Ann"))' | nameko_like shell --config config.yaml
  nameko_like shell --timeout 300        (wait up to 5 minutes for each reply)
"""
# The standalone proxies work unpatched, and interactive shells (IPython's
# prompt_toolkit, bpython's curses) are not written for a patched process.
MONKEY_PATCH = False
PASS_THROUGH = False

#: Interfaces in the order they are tried when --interface is not given.
INTERFACES = ("ipython", "bpython", "python")
#: Nameko's name for the plain Python prompt, accepted as --interface too.
PLAIN = "plain"


class ShellHelpers:
    """What ``n`` is in the shell: RPC proxy, event dispatch and config."""

    def __init__(self, rpc: ClusterProxy, dispatch_event: Callable[[str, str, Any], None],
                 config: dict[str, Any]) -> None:
        #: ``n.rpc.<service>.<method>(...)`` calls a service.
        self.rpc = rpc
        #: ``n.dispatch_event(service_name, event_type, payload)``.
        self.dispatch_event = dispatch_event
        #: The config the shell was started with.
        self.config = config

    def __repr__(self) -> str:
        return "<nameko_like shell helpers: n.rpc, n.dispatch_event, n.config>"


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Add shell's options."""
    add_config_options(parser)
    parser.add_argument(
        "--timeout", metavar="SECONDS", type=_parse_timeout,
        help="seconds each n.rpc call waits for its reply before raising RpcTimeout "
             f"(default: the config's {SHELL_RPC_TIMEOUT_CONFIG_KEY}, else "
             f"{DEFAULT_SHELL_RPC_TIMEOUT}); 0 waits forever")
    parser.add_argument("--interface", choices=(*INTERFACES, PLAIN),
                        help="which shell to use (default: the first installed of "
                             + ", ".join(INTERFACES) + f"; {PLAIN} is Nameko's name "
                             "for python); ignored when stdin is not a terminal")


def _parse_timeout(text: str) -> float:
    """``--timeout`` for argparse: seconds, not negative."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if seconds < 0 or seconds != seconds:  # NaN compares unequal to itself
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 (wait forever) or more seconds")
    return seconds


def rpc_timeout(args: argparse.Namespace, config: dict[str, Any]) -> float | None:
    """Seconds each shell RPC call waits for its reply; None waits forever.

    ``--timeout`` wins, then the config's ``SHELL_RPC_TIMEOUT``, then the
    default; 0 means no timeout.

    Raises:
        ConfigurationError: the config's value is not a number of seconds.
    """
    from nameko_like.exceptions import ConfigurationError

    value = getattr(args, "timeout", None)
    if value is None:
        value = config.get(SHELL_RPC_TIMEOUT_CONFIG_KEY, DEFAULT_SHELL_RPC_TIMEOUT)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigurationError(
                f"{SHELL_RPC_TIMEOUT_CONFIG_KEY} must be a number of seconds (0 waits "
                f"forever), got {value!r}")
    return float(value) or None


def _describe_timeout(timeout: float | None) -> str:
    if timeout is None:
        return "n.rpc calls wait for their reply forever (--timeout sets a limit)"
    return (f"n.rpc calls time out after {timeout:g} s (--timeout or "
            f"{SHELL_RPC_TIMEOUT_CONFIG_KEY} to change; 0 waits forever)")


def _banner(config: dict[str, Any], timeout: float | None) -> str:
    from nameko_like import __version__
    from nameko_like.amqp.connection import safe_uri

    return (f"nameko_like {__version__} shell on Python {sys.version.split()[0]}\n"
            f"broker: {safe_uri(config)}\n"
            "n.rpc.<service>.<method>(...), n.dispatch_event(service, event_type, payload), "
            "n.config\n"
            f"{_describe_timeout(timeout)}")


def _run_ipython(namespace: dict[str, Any], banner: str) -> None:
    from IPython import start_ipython
    from traitlets.config import Config

    config = Config()
    config.TerminalInteractiveShell.banner2 = banner + "\n"
    start_ipython(argv=[], user_ns=namespace, config=config)


def _run_bpython(namespace: dict[str, Any], banner: str) -> None:
    import bpython

    bpython.embed(locals_=namespace, banner=banner)


def _run_python(namespace: dict[str, Any], banner: str) -> None:
    import code

    try:
        import readline
        import rlcompleter
    except ImportError:  # no readline on this platform: plain input still works
        pass
    else:
        readline.set_completer(rlcompleter.Completer(namespace).complete)
        readline.parse_and_bind("tab: complete")
    code.interact(banner=banner, local=namespace, exitmsg="")


_RUNNERS = {"ipython": _run_ipython, "bpython": _run_bpython, "python": _run_python}
_MODULES = {"ipython": "IPython", "bpython": "bpython", "python": "code"}


def choose_interface(requested: str | None) -> str:
    """The interface to use: ``requested`` if installed, else the first installed."""
    import importlib.util

    from nameko_like.exceptions import CommandError

    if requested == PLAIN:
        requested = "python"
    if requested is not None:
        if importlib.util.find_spec(_MODULES[requested]) is None:
            raise CommandError(f"{requested} is not installed (pip install {requested}); "
                               "use --interface python for the plain prompt")
        return requested
    return next(name for name in INTERFACES if importlib.util.find_spec(_MODULES[name]))


def run_script(source: str, namespace: dict[str, Any]) -> int:
    """Run ``source`` as a script in ``namespace``; 1 and a traceback if it raises."""
    import traceback

    try:
        exec(compile(source, "<stdin>", "exec"), namespace)
    except Exception as exc:  # noqa: BLE001 - the script's own errors are reported, not raised
        # Start the traceback at the script: this frame is noise to its author.
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        traceback.print_exception(type(exc), exc, tb)
        return 1
    return 0


def main(args: argparse.Namespace) -> int:
    """Connect to the broker, then run the interactive shell or the stdin script."""
    from nameko_like.amqp.connection import verify_amqp_uri
    from nameko_like.standalone.events import event_dispatcher
    from nameko_like.standalone.rpc import ClusterRpcProxy

    config = load_cli_config(args)
    timeout = rpc_timeout(args, config)
    interactive = sys.stdin.isatty()
    interface = choose_interface(args.interface) if interactive else None
    verify_amqp_uri(config)
    with ClusterRpcProxy(config, timeout=timeout) as proxy, event_dispatcher(config) as dispatch:
        helpers = ShellHelpers(proxy, dispatch, config)
        namespace: dict[str, Any] = {"__name__": "__main__", "n": helpers}
        if interface is None:
            return run_script(sys.stdin.read(), namespace)
        _RUNNERS[interface](namespace, _banner(config, timeout))
    return 0
