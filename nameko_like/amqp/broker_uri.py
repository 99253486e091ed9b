"""Checking a broker URI before use, and explaining why a connection failed.

Two first-hour mistakes get a message naming their fix here: a transport
nameko_like cannot use (``redis://``: kombu would connect, then every
consumer would fail on AMQP-only calls, forever), and a broker that answers
but refuses us (wrong password, missing vhost, no permission) as opposed to
one that is not there at all.
"""

from __future__ import annotations

import errno
import shlex

import amqp.exceptions

from nameko_like.constants import AMQP_URI_CONFIG_KEY
from nameko_like.exceptions import ConfigurationError
from nameko_like.utils import sanitize_url

#: URI schemes nameko_like works with: kombu's py-amqp transport (``amqp``
#: and its alias ``pyamqp``; ``amqps`` is the same over TLS) and kombu's
#: in-process ``memory`` transport (embedded mode). Everything else lacks
#: what the framework relies on (publisher confirms, queue arguments,
#: dead-lettering).
SUPPORTED_SCHEMES = ("amqp", "amqps", "pyamqp", "memory")

#: How kombu separates failover alternatives inside one URI.
ALTERNATIVES_SEPARATOR = ";"


def alternatives(uri: str) -> list[str]:
    """The failover alternatives of ``uri`` (``uri`` alone when it has none)."""
    return [part.strip() for part in uri.split(ALTERNATIVES_SEPARATOR) if part.strip()]


def sanitize_uri(uri: str) -> str:
    """``uri`` with the password of every failover alternative masked."""
    return ALTERNATIVES_SEPARATOR.join(sanitize_url(part) for part in alternatives(uri))


def uri_scheme(uri: str) -> str | None:
    """The scheme of ``uri`` in lower case; None when it has none (kombu then uses amqp)."""
    scheme, sep, _ = uri.partition("://")
    return scheme.strip().lower() if sep else None


def check_transport(uri: object) -> str:
    """Return ``uri`` if nameko_like can use its transport, else raise.

    ``uri`` is what the config's ``AMQP_URI`` holds; each failover
    alternative (``amqp://a;amqp://b``) is checked.

    Raises:
        ConfigurationError: naming ``AMQP_URI``, the transport and the
            schemes that work.
    """
    if not isinstance(uri, str):
        raise ConfigurationError(
            f"{AMQP_URI_CONFIG_KEY} must be a string such as "
            f"'amqp://guest:guest@localhost:5672/', got {type(uri).__name__} {uri!r}")
    for alternative in uri.split(ALTERNATIVES_SEPARATOR):
        scheme = uri_scheme(alternative)
        if scheme is not None and scheme not in SUPPORTED_SCHEMES:
            supported = ", ".join(f"{name}://" for name in SUPPORTED_SCHEMES)
            raise ConfigurationError(
                f"{AMQP_URI_CONFIG_KEY} {sanitize_url(alternative.strip())!r} uses the "
                f"'{scheme}' transport, which nameko_like does not support: it needs an "
                f"AMQP 0-9-1 broker such as RabbitMQ; use one of {supported} "
                "(memory:// runs everything embedded in one process)")
    return uri


def _is_refused_port(exc: BaseException) -> bool:
    """Whether ``exc`` (or what kombu wrapped in it) is a refused TCP connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or (
                isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED):
            return True
        seen = seen.__cause__ or seen.__context__
    # kombu re-raises socket errors as its OperationalError carrying the text only
    # (eventlet's green sockets word it ECONNREFUSED)
    text = str(exc)
    return "Connection refused" in text or "ECONNREFUSED" in text


def _grant_command(vhost: str, user: str) -> str:
    return (f"rabbitmqctl set_permissions -p {shlex.quote(vhost)} {shlex.quote(user)} "
            "'.*' '.*' '.*'")


def explain_connect_failure(exc: BaseException, uri: str, user: str | None,
                            vhost: str) -> str:
    """One line saying why connecting to the broker at ``uri`` failed, and the fix.

    ``user`` and ``vhost`` are what the connection used (kombu parses them
    from the URI); ``uri`` is shown with its password masked.
    """
    shown = sanitize_uri(uri)
    user = user or "guest"  # kombu logs in as guest when the URI names no user
    reply_text = " ".join(str(getattr(exc, "reply_text", "") or exc).split())
    refused = (amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed)
    if isinstance(exc, refused) and "access to vhost" in reply_text:
        # RabbitMQ answers 530 NOT_ALLOWED when the user has no permissions there
        return (f"the AMQP broker at {shown} refused user {user!r} access to vhost "
                f"{vhost!r} ({reply_text}); give the user permissions on it "
                f"(`{_grant_command(vhost, user)}`) or use another vhost in "
                f"{AMQP_URI_CONFIG_KEY}")
    if isinstance(exc, amqp.exceptions.AccessRefused):
        return (f"the AMQP broker at {shown} refused the login of user {user!r} "
                f"({reply_text}); check the user and password in {AMQP_URI_CONFIG_KEY} "
                f"(or --broker)")
    if isinstance(exc, amqp.exceptions.NotAllowed) and "not found" in reply_text:
        return (f"the AMQP broker at {shown} has no vhost {vhost!r} ({reply_text}); create it "
                f"(`rabbitmqctl add_vhost {shlex.quote(vhost)}`, then "
                f"`{_grant_command(vhost, user)}`) or fix the vhost (the path) in "
                f"{AMQP_URI_CONFIG_KEY}")
    if _is_refused_port(exc):
        return (f"cannot reach the AMQP broker at {shown} ({exc}: nothing listens on "
                "that port); start RabbitMQ (`rabbitmq-server -detached`), fix "
                f"the host or port in {AMQP_URI_CONFIG_KEY}, or run embedded with "
                "--broker memory://")
    return (f"cannot reach the AMQP broker at {shown} ({exc}); check that RabbitMQ runs "
            f"there and that {AMQP_URI_CONFIG_KEY} is right, or run embedded with "
            "--broker memory://")
