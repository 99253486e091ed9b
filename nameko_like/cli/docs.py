"""``nameko_like docs``: write or serve the AsyncAPI / OpenAPI documents of services."""

from __future__ import annotations

import argparse
import logging
import sys

from nameko_like.cli.options import add_config_options, load_cli_config
from nameko_like.exceptions import CommandError

NAME = "docs"
HELP = "write or serve the AsyncAPI and OpenAPI documents of services"
DESCRIPTION = """\
Build the contract documents of the services in MODULE (or MODULE:Class)
from their type hints: AsyncAPI 3.0 for the AMQP side (RPC methods, events,
queues, the broker of the config's AMQP_URI) or OpenAPI 3.1 for the @http
routes. Written as JSON, or YAML when --out ends in .yaml. Needs the
'contracts' extra (pydantic).
"""
EPILOG = """\
examples:
  nameko_like docs travel.trips                      (AsyncAPI JSON on stdout)
  nameko_like docs travel.gateway --format openapi --out openapi.yaml
  nameko_like docs travel.airports travel.trips --serve 127.0.0.1:8080
"""
MONKEY_PATCH = False
PASS_THROUGH = False

_log = logging.getLogger(__name__)


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Add docs' options."""
    parser.add_argument("services", nargs="+", metavar="MODULE[:Class]",
                        help="modules (or module:Class) holding the services")
    parser.add_argument("--format", choices=("asyncapi", "openapi"), default="asyncapi",
                        help="which document to write (default: asyncapi)")
    parser.add_argument("--out", metavar="FILE",
                        help="write to FILE (.json, or .yaml/.yml for YAML) instead of stdout")
    parser.add_argument("--title", help="the document's title (default: the service names)")
    parser.add_argument("--version", dest="doc_version", default="1.0.0",
                        help="the API version in the document (default: 1.0.0)")
    parser.add_argument("--serve", metavar="HOST:PORT", nargs="?", const="127.0.0.1:8000",
                        help="serve both documents and a page rendering them "
                             "(default address 127.0.0.1:8000) until Ctrl-C")
    add_config_options(parser)


def main(args: argparse.Namespace) -> int:
    """Write the document, or serve both."""
    from nameko_like.cli.discovery import add_cwd_to_path, resolve_services

    add_cwd_to_path()
    services = resolve_services(list(args.services))
    config = load_cli_config(args)
    try:
        from nameko_like.contracts.documents import build_document, render
    except ImportError as exc:
        raise CommandError(
            f"docs needs pydantic ({exc}): pip install 'nameko_like[contracts]'") from None
    if args.serve:
        from nameko_like.contracts.serving import serve_documents

        host, _, port = str(args.serve).rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(f"--serve takes HOST:PORT (e.g. 127.0.0.1:8000), got {args.serve!r}")

        def ready(url: str) -> None:
            print(f"serving the contract documents on {url} (Ctrl-C to stop)", file=sys.stderr,
                  flush=True)

        serve_documents(services, config, args.serve, title=args.title,
                        version=args.doc_version, ready=ready)
        return 0
    document = build_document(services, args.format, config, title=args.title,
                              version=args.doc_version)
    text = render(document, args.out)
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    return 0
