"""``nameko_like run``: run service classes in one process until stopped."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from nameko_like.cli.options import (
    add_config_options,
    backdoor_address,
    config_files,
    load_cli_config,
    parse_backdoor_port,
)

NAME = "run"
HELP = "run services"
DESCRIPTION = """\
Run one or more services in this process until SIGTERM or Ctrl-C.

Each SERVICE is `module` (every class in it with a `name` and at least one
entrypoint) or `module:ServiceClass`. The current directory is importable.

The first SIGTERM or Ctrl-C stops gracefully: no new work is accepted and
running workers get up to SHUTDOWN_GRACE_PERIOD seconds (config, default 30)
to finish. A second one kills the services at once.

With --reload (development only), the services run in a child process that
is restarted whenever a watched source file changes.

Logging follows the config's LOGGING key (a logging.config.dictConfig
mapping); without it, INFO and above go to stderr.
"""
EPILOG = """\
examples:
  nameko_like run myapp.services
  nameko_like run myapp.orders:OrderService myapp.payments --config config.yaml
  nameko_like run myapp.services --broker amqp://user:pass@rabbit:5672/vhost
  nameko_like run myapp.services --broker memory://      (embedded, one process)
  nameko_like run myapp.services --define max_workers=50 --define WEB.PORT=9000
  nameko_like run myapp.services --backdoor-port 3000    (then: nameko_like backdoor 3000)
  nameko_like run myapp.services --reload               (development: restart on edits)

exit status: 0 after a graceful stop; 1 with a one-line reason when a module,
class or config file is missing or broken, no service is found, or the broker
cannot be reached; 128+N when signal N had to kill the services.
"""
MONKEY_PATCH = True
PASS_THROUGH = False


def needs_monkey_patch(args: argparse.Namespace) -> bool:
    """Whether this run must be patched: not the ``--reload`` supervisor, which
    runs no services itself (its child ``run`` patches itself)."""
    return not getattr(args, "reload", False)


#: --eventlet-hub's choices: eventlet's own default, or its asyncio hub.
EVENTLET_HUBS = ("default", "asyncio")


def before_monkey_patch(args: argparse.Namespace) -> None:
    """Choose eventlet's hub as ``--eventlet-hub`` says, before patching makes it.

    Through the environment, which eventlet reads when it first makes its
    hub, so that ``--reload``'s child process gets the same hub.
    """
    hub = getattr(args, "eventlet_hub", None)
    if hub == "default":
        os.environ.pop("EVENTLET_HUB", None)
    elif hub:
        os.environ["EVENTLET_HUB"] = hub


def _check_hub(args: argparse.Namespace) -> None:
    from nameko_like.asyncio_support import is_asyncio_hub
    from nameko_like.exceptions import CommandError

    hub = getattr(args, "eventlet_hub", None)
    if hub and is_asyncio_hub() != (hub == "asyncio"):
        raise CommandError(
            f"--eventlet-hub {hub} came too late: eventlet had already made its hub "
            "(this process imported and used eventlet before the command ran); "
            f"set EVENTLET_HUB{'=asyncio' if hub == 'asyncio' else ''} in the environment instead"
        )

#: Config key holding a ``logging.config.dictConfig`` mapping.
LOGGING_CONFIG_KEY = "LOGGING"
#: Format of the default logging set up when the config has no LOGGING.
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_log = logging.getLogger(__name__)


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Add run's arguments."""
    parser.add_argument("services", nargs="+", metavar="SERVICE",
                        help="module or module:ServiceClass to run")
    add_config_options(parser)
    parser.add_argument(
        "--backdoor-port", metavar="[HOST:]PORT", type=parse_backdoor_port,
        help="serve an eventlet backdoor (a Python prompt inside the running "
             "process, with `runner` defined) on PORT of HOST, by default "
             "127.0.0.1 only; connect with `nameko_like backdoor`",
    )
    parser.add_argument(
        "--eventlet-hub", choices=EVENTLET_HUBS,
        help="eventlet's hub: 'asyncio' runs greenthreads on an asyncio loop and lets "
             "service methods be async def (the same as EVENTLET_HUB=asyncio in the "
             "environment); default: what EVENTLET_HUB says, else eventlet's default",
    )
    group = parser.add_argument_group("development")
    group.add_argument(
        "--reload", action="store_true",
        help="restart the services whenever a .py, .yaml or .yml file under the "
             "watched directories (or a --config file) changes; for development, "
             "needs watchfiles (pip install 'nameko_like[reload]')",
    )
    group.add_argument(
        "--reload-dir", metavar="DIR", action="append", dest="reload_dirs",
        help="directory --reload watches (repeatable; default: the current directory)",
    )


def setup_logging(config: dict[str, Any], config_files: list[str]) -> None:
    """Configure logging from the config's LOGGING, else log INFO to stderr.

    Library modules log per-message details at DEBUG only, so the default
    INFO level keeps logging off the message-handling path.
    """
    from nameko_like.constants import LOG_FORMAT_CONFIG_KEY
    from nameko_like.exceptions import ConfigurationError

    settings = config.get(LOGGING_CONFIG_KEY)
    log_format = config.get(LOG_FORMAT_CONFIG_KEY)
    if log_format not in (None, "text", "json"):
        raise ConfigurationError(
            f"{LOG_FORMAT_CONFIG_KEY} must be 'json' or 'text', got {log_format!r}")
    if settings is None and log_format == "json":
        from nameko_like.logging_json import configure_json_logging

        configure_json_logging(logging.INFO)
        return
    if settings is None:
        logging.basicConfig(level=logging.INFO, format=DEFAULT_LOG_FORMAT, stream=sys.stderr)
        return

    # Imported only here: a service logging to stderr needs neither it nor
    # the socketserver module it imports.
    from logging import config as logging_config

    source = ", ".join(config_files) or "--define"
    try:
        logging_config.dictConfig(settings)
    # dictConfig raises many types for the many ways its input can be wrong.
    except Exception as exc:  # noqa: BLE001
        # Its messages name the broken part; the reason is in the cause.
        reason = f"{exc} ({exc.__cause__})" if exc.__cause__ else str(exc)
        raise ConfigurationError(
            f"{source}: key '{LOGGING_CONFIG_KEY}' is not a valid logging config: {reason}"
        ) from None


def import_service(module_name: str) -> list[type]:
    """The service classes ``module_name`` (``module`` or ``module:Class``) names.

    As Nameko's: a bare module gives every service class in it, and a
    missing module or class, or a module without services, is a
    :class:`~nameko_like.exceptions.CommandError`. The current directory
    is importable.
    """
    from nameko_like.cli import discovery

    return discovery.resolve_services([module_name])


def main(args: argparse.Namespace) -> int:
    """Load the config, find the services, check the broker, then serve.

    ``args`` is what :func:`nameko_like.cli.main.setup_parser` parses for
    ``run`` (a namespace shaped as Nameko's parser makes one works too). The
    standard library must be monkey-patched already, as ``args.main`` and
    the ``nameko_like`` command do.
    """
    config = load_cli_config(args)
    setup_logging(config, config_files(args))
    if getattr(args, "reload", False):
        from nameko_like.cli.reload import supervise

        # The services run (and report their own errors) in a child process.
        return supervise(args)

    _check_hub(args)
    # Imported now that eventlet has patched the standard library.
    from nameko_like.amqp.connection import verify_amqp_uri
    from nameko_like.cli import discovery
    from nameko_like.cli.serving import serve

    services = discovery.resolve_services(args.services)
    verify_amqp_uri(config)
    return serve(services, config,
                 backdoor_address=backdoor_address(getattr(args, "backdoor_port", None)))
