"""Which serializer messages are written with, and which are accepted.

Config keys (spelled as in Nameko):

* ``serializer``: name of the serializer for outgoing messages (``json``).
* ``SERIALIZERS``: extra serializers to register, as
  ``{name: {"encoder": "pkg.mod:dumps", "decoder": "pkg.mod:loads",
  "content_type": "application/x-name", "content_encoding": "utf-8"}}``.
* ``ACCEPT``: serializer names (or content types) accepted on incoming
  messages; defaults to just the configured serializer. Pickle is never
  accepted unless listed here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import importlib
import json

from kombu import serialization as kombu_serialization
from kombu.utils import json as kombu_json
from kombu.exceptions import ContentDisallowed, DecodeError

from nameko_like.constants import (
    ACCEPT_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    SERIALIZER_CONFIG_KEY,
    SERIALIZERS_CONFIG_KEY,
)
from nameko_like.decoding_limits import DEFAULT_LIMITS, DecodingLimits
from nameko_like.exceptions import ConfigurationError
from nameko_like.utils import import_from_path


class SerializationConfig(NamedTuple):
    """The outgoing serializer and the accepted content types."""

    serializer: str
    accept: list[str]


def _register_custom(config: dict[str, Any]) -> None:
    for name, spec in (config.get(SERIALIZERS_CONFIG_KEY) or {}).items():
        try:
            encoder = import_from_path(spec["encoder"])
            decoder = import_from_path(spec["decoder"])
            content_type = spec["content_type"]
        except KeyError as exc:
            raise ConfigurationError(
                f"{SERIALIZERS_CONFIG_KEY}.{name}: missing required key {exc.args[0]!r} "
                "(each serializer needs encoder, decoder and content_type)"
            ) from None
        except ImportError as exc:
            raise ConfigurationError(f"{SERIALIZERS_CONFIG_KEY}.{name}: {exc}") from None
        kombu_serialization.register(
            name,
            encoder=encoder,
            decoder=decoder,
            content_type=content_type,
            content_encoding=spec.get("content_encoding", "utf-8"),
        )


def _check_msgpack(key: str) -> None:
    # kombu registers "msgpack" even without the package, with an encoder
    # that fails at the first publish: fail at start-up instead, naming the fix.
    try:
        importlib.import_module("msgpack")
    except ImportError:
        raise ConfigurationError(
            f"config key {key!r}: serializer 'msgpack' needs the msgpack package: "
            "pip install 'nameko_like[msgpack]'") from None


def setup(config: dict[str, Any]) -> SerializationConfig:
    """Register custom serializers of ``config`` and return what to use.

    Raises ``ConfigurationError`` naming the key for an unknown serializer.
    """
    _register_custom(config)
    serializer = config.get(SERIALIZER_CONFIG_KEY) or DEFAULT_SERIALIZER
    known = kombu_serialization.registry._encoders
    if serializer not in known:
        raise ConfigurationError(
            f"config key {SERIALIZER_CONFIG_KEY!r}: unknown serializer {serializer!r} "
            f"(known: {', '.join(sorted(known))}; register others under {SERIALIZERS_CONFIG_KEY})"
        )
    if serializer == "msgpack":
        _check_msgpack(SERIALIZER_CONFIG_KEY)
    accept = list(config.get(ACCEPT_CONFIG_KEY) or [serializer])
    if "msgpack" in accept:
        _check_msgpack(ACCEPT_CONFIG_KEY)
    for name in accept:
        if name not in known and "/" not in name:
            raise ConfigurationError(
                f"config key {ACCEPT_CONFIG_KEY!r}: unknown serializer {name!r}"
            )
    return SerializationConfig(serializer, accept)


def content_types(accept: list[str]) -> set[str]:
    """The content types that a list of serializer names stands for."""
    types = set()
    for name in accept:
        if "/" in name:
            types.add(name)
        else:
            types.add(_content_type_of(name))
    return types


def _content_type_of(name: str) -> str:
    content_type: str = kombu_serialization.registry._encoders[name].content_type
    return content_type


def decode(body: Any, content_type: str | None, content_encoding: str | None, accept: set[str],
           headers: dict[str, Any] | None = None, limits: DecodingLimits = DEFAULT_LIMITS) -> Any:
    """Decode a message body, refusing content types not in ``accept``.

    The body's size is checked against ``limits`` first; a body compressed
    by the publisher (its ``compression`` header names how) is inflated
    within them. Raises ``kombu.exceptions.ContentDisallowed`` for a refused
    type and ``kombu.exceptions.DecodeError`` for anything else that goes
    wrong, whatever the serializer raised (a RecursionError for deeply
    nested JSON, say): a message that can't be decoded is the message's
    fault, never the service's.
    """
    limits.check_size(body)
    compression = headers.get("compression") if headers else None
    try:
        if compression:
            body = limits.decompress(body, str(compression))
        json_fast_path = content_type == JSON_CONTENT_TYPE and content_type in accept
        if json_fast_path and body and _default_json():
            return _decode_json(body)
        return kombu_serialization.loads(body, content_type, content_encoding, accept=accept)
    except (ContentDisallowed, DecodeError):
        raise
    except Exception as exc:  # noqa: BLE001 - any serializer error means a bad message
        raise DecodeError(f"cannot decode a {content_type} body: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None


JSON_CONTENT_TYPE = "application/json"

# kombu's json serializer builds a new decoder (and encoder) on every call;
# for the common case we keep one of each, with the same hooks, so the wire
# format is exactly kombu's.
_JSON_DECODER = json.JSONDecoder(object_hook=kombu_json.object_hook)
JSON_ENCODER = kombu_json.JSONEncoder()


def _default_json() -> bool:
    """Whether 'json' is still kombu's own serializer (not replaced by the user)."""
    return kombu_serialization.registry._decoders.get(JSON_CONTENT_TYPE) is kombu_json.loads


def _decode_json(body: Any) -> Any:
    if isinstance(body, memoryview):
        body = body.tobytes()
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        return _JSON_DECODER.decode(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(str(exc)) from exc
