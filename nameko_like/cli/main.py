"""Entry point of the ``nameko_like`` command (and ``python -m nameko_like``).

Arguments are parsed first; then, for the commands that run services or talk
to them, eventlet monkey-patches the standard library *before* anything that
uses sockets or threads is imported. That is why this module and every
command module import only light modules at the top and the rest inside
their ``main``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from typing import Protocol

from nameko_like import __version__
from nameko_like.cli import backdoor, dlq, docs, run, shell, show_config, test
from nameko_like.exceptions import CommandError, ConfigurationError



class CommandModule(Protocol):
    """What a command module (``run``, ``shell``, ...) defines."""

    #: The command's name on the command line.
    NAME: str
    #: One line for the top-level ``--help``.
    HELP: str
    #: The command's own ``--help`` text, before and after its options.
    DESCRIPTION: str
    EPILOG: str
    #: Whether eventlet must monkey-patch the standard library before ``main``.
    MONKEY_PATCH: bool
    #: Whether arguments after the command go to another program (pytest).
    PASS_THROUGH: bool

    def init_parser(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's options to its sub-parser."""

    def main(self, args: argparse.Namespace) -> int:
        """Run the command; return its exit status."""


#: The command modules, in the order ``--help`` lists them.
COMMANDS: tuple[CommandModule, ...] = (run, shell, show_config, backdoor, dlq, test, docs)

#: Exit status for errors the command explains on one line.
EXIT_ERROR = 1
#: Exit status after Ctrl-C interrupted a command (128 + SIGINT, as shells do).
EXIT_INTERRUPTED = 130

_EPILOG = """\
examples:
  nameko_like run myapp.services --config config.yaml
  nameko_like shell --broker amqp://guest:guest@localhost/
  nameko_like show-config --config base.yaml --config prod.yaml
  nameko_like COMMAND --help     (each command's own options and examples)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="nameko_like",
        description="Run and talk to nameko_like services.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                       required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.DESCRIPTION,
            epilog=command.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            # A prefix of --help must not swallow an option meant for pytest.
            allow_abbrev=not command.PASS_THROUGH,
        )
        command.init_parser(sub)
        sub.set_defaults(command_module=command, command_parser=sub,
                         main=functools.partial(run_command, command))
    return parser


def setup_parser() -> argparse.ArgumentParser:
    """Nameko's name for :func:`build_parser`.

    As with Nameko, ``args = setup_parser().parse_args([...])`` then
    ``args.main(args)`` runs the command (monkey-patching first where the
    command needs it); errors are raised, not printed.
    """
    return build_parser()


def run_command(command: CommandModule, args: argparse.Namespace) -> int:
    """Run one command module with parsed ``args``; return its exit status."""
    # A command may refine MONKEY_PATCH per invocation (run --reload's supervisor).
    needs_patch = getattr(command, "needs_monkey_patch", None)
    before_patch = getattr(command, "before_monkey_patch", None)
    if before_patch is not None:  # run --eventlet-hub: chosen before patching makes the hub
        before_patch(args)
    if command.MONKEY_PATCH and (needs_patch is None or needs_patch(args)):
        from nameko_like import green_resolver

        # Without dnspython's green resolver unless the environment asks for
        # it (about a third of the start-up's CPU time, and 7 MB); look-ups
        # then run the OS resolver on a native thread, off the hub.
        eventlet = green_resolver.import_eventlet()
        green_resolver.install()
        eventlet.monkey_patch()
    if command.PASS_THROUGH and not hasattr(args, "passthrough"):
        rest = list(getattr(args, "pytest_args", None) or [])
        args.passthrough = rest[1:] if rest[:1] == ["--"] else rest
    return int(command.main(args) or 0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in ``argv`` (default ``sys.argv[1:]``); return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    command = args.command_module
    if command.PASS_THROUGH:
        # Global options all exit, so the command name is argv[0] and
        # everything after it belongs to the command, order kept.
        rest = argv[1:]
        args.passthrough = rest[1:] if rest[:1] == ["--"] else rest
    elif extra:
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")

    try:
        return run_command(command, args)
    except (CommandError, ConfigurationError, ConnectionError) as exc:
        print(f"nameko_like {command.NAME}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line the terminal echoed ^C on
        return EXIT_INTERRUPTED
