"""``nameko_like dlq``: list, show, replay and purge a service's dead-lettered messages.

The messages live in ``<service>.dead-letter`` (see
:mod:`nameko_like.amqp.dead_letter`); the work on the queue is done by
:mod:`nameko_like.amqp.dead_letter_queue`. Replay and purge change the
queue only with ``--yes`` or a confirmation typed at a terminal, and
``--dry-run`` shows what they would do without changing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from nameko_like.cli.options import add_config_options, load_cli_config
from nameko_like.exceptions import CommandError

if TYPE_CHECKING:
    from nameko_like.amqp.dead_letter_queue import DeadLetter

NAME = "dlq"
HELP = "list, show, replay or purge a service's dead-lettered messages"
DESCRIPTION = """\
Work with the messages a service dead-lettered (its queue SERVICE.dead-letter).

  list SERVICE             one line per message: ID, AGE, ORIGIN (exchange/routing key), REASON
  show SERVICE ID          one message in full: reason, origin, properties, headers, body
  replay SERVICE [ID ...]  publish messages back to their original exchange and routing key
  purge SERVICE [ID ...]   delete messages

An ID may be shortened to any unique prefix. replay and purge act on the
IDs given, else on every message matching the --filter options, else on
every message; they ask before changing anything (or take --yes) and
--dry-run shows what they would do. A replayed message leaves the
dead-letter queue only once the broker confirmed its copy.
"""
EPILOG = """\
filters (--filter, repeatable, all must match):
  FIELD=VALUE   equal          FIELD~TEXT   contains
  FIELD: id, reason, exchange, routing_key, content_type, correlation_id,
         message_id, header:NAME

examples:
  nameko_like dlq list orders --broker amqp://guest:guest@rabbit/
  nameko_like dlq show orders 3f2a9c
  nameko_like dlq replay orders --filter 'reason~MalformedRequest' --dry-run
  nameko_like dlq replay orders 3f2a9c --yes
  nameko_like dlq purge orders --filter routing_key=orders.old --yes
"""
MONKEY_PATCH = False
PASS_THROUGH = False

#: Fields --filter can name, with how to read each from a message.
FILTER_FIELDS = ("id", "reason", "exchange", "routing_key", "content_type", "correlation_id",
                 "message_id")
#: Bytes of a body ``show`` prints when it cannot decode it.
RAW_PREVIEW = 512


def init_parser(parser: argparse.ArgumentParser) -> None:
    """Add dlq's sub-commands and their options."""
    actions = parser.add_subparsers(title="actions", dest="dlq_action", metavar="ACTION",
                                    required=True)
    for action, text in (("list", "one line per dead-lettered message"),
                         ("show", "one message in full"),
                         ("replay", "publish messages back to where they first went"),
                         ("purge", "delete messages")):
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("service", metavar="SERVICE", help="the service's name")
        if action == "show":
            sub.add_argument("ids", metavar="ID", nargs=1, help="a message id (or its prefix)")
        elif action != "list":
            sub.add_argument("ids", metavar="ID", nargs="*",
                             help="message ids (or prefixes); default: all that match --filter")
        sub.add_argument("--filter", metavar="EXPR", action="append", default=[],
                         type=parse_filter, help="FIELD=VALUE or FIELD~TEXT; repeatable")
        if action in ("replay", "purge"):
            sub.add_argument("--yes", "-y", action="store_true",
                             help="do it without asking")
            sub.add_argument("--dry-run", action="store_true",
                             help="print what would be done; change nothing")
        add_config_options(sub)


def parse_filter(text: str) -> tuple[str, str, str]:
    """``FIELD=VALUE`` or ``FIELD~TEXT`` for argparse: ``(field, operator, value)``."""
    positions = [index for index in (text.find("="), text.find("~")) if index > 0]
    if not positions:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FIELD=VALUE (equal) or FIELD~TEXT (contains)")
    at = min(positions)
    name, operator, value = text[:at], text[at], text[at + 1:]
    if name not in FILTER_FIELDS and not (name.startswith("header:") and len(name) > 7):
        raise argparse.ArgumentTypeError(
            f"{text!r}: unknown field {name!r} (one of {', '.join(FILTER_FIELDS)}, header:NAME)")
    return name, operator, value


def _field(letter: DeadLetter, name: str) -> str | None:
    if name.startswith("header:"):
        value = letter.headers.get(name[7:])
    elif name in ("id", "reason", "exchange", "routing_key"):
        value = getattr(letter, name)
    else:
        value = letter.properties.get(name)
    return None if value is None else str(value)


def matches(letter: DeadLetter, filters: list[tuple[str, str, str]]) -> bool:
    """Whether ``letter`` passes every filter."""
    for name, operator, wanted in filters:
        value = _field(letter, name)
        if value is None or (value != wanted if operator == "=" else wanted not in value):
            return False
    return True


def select(letters: list[DeadLetter], ids: list[str],
           filters: list[tuple[str, str, str]]) -> list[DeadLetter]:
    """The letters named by ``ids`` (prefixes) and passing ``filters``.

    Raises ``CommandError`` for an id that names no message, or several
    different ones.
    """
    chosen = [letter for letter in letters if matches(letter, filters)]
    if not ids:
        return chosen
    picked: list[DeadLetter] = []
    for prefix in ids:
        found = [letter for letter in chosen if letter.id.startswith(prefix)]
        if not found:
            raise CommandError(f"no message with id {prefix!r}" +
                               (" matching the filters" if filters else "") +
                               " (nameko_like dlq list shows the ids)")
        if len({letter.id for letter in found}) > 1:
            raise CommandError(f"id {prefix!r} is ambiguous: give more of it")
        picked.extend(letter for letter in found if letter not in picked)
    return picked


def one_line(value: object, limit: int = 200) -> str:
    """``value`` as one printable line: control characters escaped, length capped."""
    text = str(value).encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def format_age(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h``, ``2d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def origin(letter: DeadLetter) -> str:
    """``exchange/routing_key`` (the default exchange shown as ``""``)."""
    exchange = '""' if letter.exchange == "" else (letter.exchange or "?")
    return one_line(f"{exchange}/{letter.routing_key}", 100)


def list_line(letter: DeadLetter) -> str:
    """The ``list`` line of ``letter``."""
    age = format_age(letter.age())
    return f"{letter.id}  {age:>4}  {origin(letter)}  {one_line(letter.reason)}"


def show_text(letter: DeadLetter) -> str:
    """Everything about ``letter``, for ``show``."""
    lines = [f"id:            {letter.id}",
             f"reason:        {one_line(letter.reason, 2000)}",
             f"age:           {format_age(letter.age())}",
             f"origin:        {origin(letter)}"]
    lines += [f"{name + ':':<15}{one_line(value)}" for name, value in
              sorted(letter.properties.items()) if name != "application_headers"]
    lines.append("headers:")
    lines += [f"  {one_line(name, 100)}: {one_line(value, 2000)}"
              for name, value in sorted(letter.headers.items())]
    lines.append("body:")
    lines.append(_body_text(letter))
    return "\n".join(lines)


def _body_text(letter: DeadLetter) -> str:
    from kombu import serialization

    content_type = str(letter.properties.get("content_type") or "")
    try:
        if content_type == "application/x-python-serialize":
            raise ValueError("pickles are never loaded")
        decoded = serialization.loads(letter.body, content_type,
                                      str(letter.properties.get("content_encoding") or "binary"),
                                      accept=[content_type])
        return json.dumps(decoded, indent=2, default=repr, ensure_ascii=False)
    except Exception:  # noqa: BLE001 - any body that won't decode is shown raw
        preview = letter.body[:RAW_PREVIEW]
        more = f" ... ({len(letter.body)} bytes)" if len(letter.body) > RAW_PREVIEW else ""
        return f"(raw {content_type or 'bytes'}) {preview!r}{more}"


def _confirm(question: str, args: argparse.Namespace) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CommandError("not confirmed: pass --yes to do it, or --dry-run to see what "
                           "it would do")
    print(f"{question} [y/N] ", end="", flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CommandError("not confirmed: nothing changed")


def main(args: argparse.Namespace) -> int:
    """Run the dlq action of ``args``; return the exit status."""
    from nameko_like.amqp.connection import verify_amqp_uri
    from nameko_like.amqp.transport import transport_of
    from nameko_like.amqp.dead_letter_queue import DeadLetterQueue

    config = load_cli_config(args)
    if transport_of(config).in_process:
        raise CommandError("dlq needs a RabbitMQ broker: memory:// exists only inside "
                           "the process that runs the services")
    verify_amqp_uri(config)
    with DeadLetterQueue(config, args.service) as queue:
        letters = queue.take_all()
        chosen = select(letters, list(getattr(args, "ids", None) or []), args.filter)
        if args.dlq_action == "list":
            for letter in chosen:
                print(list_line(letter))
            print(f"{len(chosen)} of {len(letters)} message(s) in {queue.name}", file=sys.stderr)
            return 0
        if args.dlq_action == "show":
            print(show_text(chosen[0]))
            return 0
        return _change(queue, chosen, args)


def _change(queue: Any, chosen: list[DeadLetter], args: argparse.Namespace) -> int:
    """Replay or purge ``chosen``, after the dry run or confirmation."""
    replay = args.dlq_action == "replay"
    verb, done_verb = ("replay", "replayed") if replay else ("purge", "purged")
    if not chosen:
        print(f"nothing to {verb}: no message matches", file=sys.stderr)
        return 0
    for letter in chosen:
        print(f"{verb} {letter.id}" + (f" -> {origin(letter)}" if replay else "") +
              f"  ({one_line(letter.reason, 80)})")
    if args.dry_run:
        print(f"dry run: {len(chosen)} message(s) would be {done_verb}; nothing changed",
              file=sys.stderr)
        return 0
    _confirm(f"{verb} these {len(chosen)} message(s) of {queue.name}?", args)
    done = 0
    try:
        for letter in chosen:
            if replay:
                queue.replay(letter)
            else:
                queue.remove(letter)
            done += 1
    finally:
        print(f"{done_verb} {done} of {len(chosen)} message(s)", file=sys.stderr)
    return 0
