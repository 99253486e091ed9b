"""Limits on what an incoming message may cost to decode.

A message is data from anyone who can publish to our queues. Three cheap
checks keep one hostile message from taking a service down:

* its size, checked before anything else (``MAX_MESSAGE_SIZE``);
* its compression: only the schemes in ``ACCEPT_COMPRESSION`` are inflated,
  and never beyond ``MAX_DECODED_SIZE`` bytes (a 1 KB bz2 "bomb" would
  otherwise inflate to gigabytes);
* inflating happens on an OS thread (eventlet's ``tpool``) in a green
  process, so the greenthreads reading the broker and answering other
  calls keep running while it works.

Decompression uses the standard library's incremental decompressors, whose
``max_length`` stops them at the cap without inflating the rest.
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from kombu.exceptions import DecodeError

from nameko_like._eventlet import eventlet

from eventlet import tpool  # after the deprecation filter in _eventlet
from nameko_like.constants import (
    ACCEPT_COMPRESSION_CONFIG_KEY,
    DEFAULT_ACCEPT_COMPRESSION,
    DEFAULT_MAX_DECODED_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_DECODED_SIZE_CONFIG_KEY,
    MAX_MESSAGE_SIZE_CONFIG_KEY,
)
from nameko_like.exceptions import ConfigurationError

#: A decompressor object with ``decompress(data, max_length)``.
_Decompressor = Any

#: Compression schemes we can inflate with a bound, by the content types
#: kombu writes in a message's ``compression`` header (and kombu's aliases).
_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "application/x-gzip": zlib.decompressobj,
    "application/x-bz2": bz2.BZ2Decompressor,
    "application/x-lzma": lzma.LZMADecompressor,
}
_ALIASES = {"zlib": "application/x-gzip", "gzip": "application/x-gzip",
            "bzip2": "application/x-bz2", "bz2": "application/x-bz2",
            "lzma": "application/x-lzma", "xz": "application/x-lzma"}


def _scheme(name: str) -> str:
    return _ALIASES.get(name, name)


@dataclasses.dataclass(frozen=True)
class DecodingLimits:
    """What one message may cost: its size, its inflated size, its compression."""

    #: Largest message body accepted, in bytes, as it arrives.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Largest body after decompression, in bytes.
    max_decoded_size: int = DEFAULT_MAX_DECODED_SIZE
    #: Compression schemes inflated (content types, as kombu names them).
    accept_compression: frozenset[str] = frozenset(
        _scheme(name) for name in DEFAULT_ACCEPT_COMPRESSION)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DecodingLimits:
        """The limits a config sets; raises ConfigurationError naming a bad key."""
        sizes = {}
        for key, default in ((MAX_MESSAGE_SIZE_CONFIG_KEY, DEFAULT_MAX_MESSAGE_SIZE),
                             (MAX_DECODED_SIZE_CONFIG_KEY, DEFAULT_MAX_DECODED_SIZE)):
            value = config.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(
                    f"config key {key!r}: expected a positive number of bytes, got {value!r}")
            sizes[key] = value
        names = config.get(ACCEPT_COMPRESSION_CONFIG_KEY, DEFAULT_ACCEPT_COMPRESSION)
        if isinstance(names, str) or not all(isinstance(name, str) for name in names):
            raise ConfigurationError(
                f"config key {ACCEPT_COMPRESSION_CONFIG_KEY!r}: expected a list of "
                f"compression names, got {names!r}")
        schemes = frozenset(_scheme(name) for name in names)
        unknown = sorted(schemes - set(_DECOMPRESSORS))
        if unknown:
            raise ConfigurationError(
                f"config key {ACCEPT_COMPRESSION_CONFIG_KEY!r}: cannot inflate "
                f"{', '.join(unknown)} with a size limit (choose from zlib, bzip2, lzma)")
        return cls(sizes[MAX_MESSAGE_SIZE_CONFIG_KEY], sizes[MAX_DECODED_SIZE_CONFIG_KEY],
                   schemes)

    def check_size(self, body: Any) -> None:
        """Raise DecodeError if ``body`` is over ``max_message_size``."""
        size = len(body) if body is not None else 0
        if size > self.max_message_size:
            raise DecodeError(
                f"message of {size} bytes is over the limit of {self.max_message_size} "
                f"(config key {MAX_MESSAGE_SIZE_CONFIG_KEY})")

    def decompress(self, body: bytes, compression: str) -> bytes:
        """Inflate ``body``; DecodeError if the scheme is refused or it inflates too much."""
        scheme = _scheme(compression)
        if scheme not in self.accept_compression:
            accepted = ", ".join(sorted(self.accept_compression)) or "none"
            raise DecodeError(
                f"compression {compression!r} is not accepted (accepted: {accepted}; "
                f"config key {ACCEPT_COMPRESSION_CONFIG_KEY})")
        if _green_process():
            # Inflating a few MB takes milliseconds to seconds: off the hub,
            # so other greenthreads (the broker reader among them) run on.
            return tpool.execute(self._inflate, body, scheme)  # type: ignore[no-any-return]
        return self._inflate(body, scheme)

    def _inflate(self, body: bytes, scheme: str) -> bytes:
        decompressor = _DECOMPRESSORS[scheme]()
        try:
            inflated = decompressor.decompress(body, self.max_decoded_size + 1)
        except Exception as exc:  # noqa: BLE001 - zlib.error, OSError, LZMAError...: a bad message
            raise DecodeError(f"cannot decompress ({scheme}): {exc}") from None
        if len(inflated) > self.max_decoded_size:
            raise DecodeError(
                f"message inflates to more than {self.max_decoded_size} bytes "
                f"(config key {MAX_DECODED_SIZE_CONFIG_KEY})")
        return bytes(inflated)


def _green_process() -> bool:
    return bool(eventlet.patcher.is_monkey_patched("thread"))


#: The limits when a config sets none.
DEFAULT_LIMITS = DecodingLimits()
