"""Spotting misspelt config keys: did-you-mean warnings for upper-case keys.

Config files mix the framework's keys with the user's own (``DB_URIS``,
``GREETING``...), so an unknown key is never an error. But a key that is one
typo away from a framework key (``AMQP_UIR``) is almost always a mistake that
would otherwise pass in silence, with the default quietly used instead; that
one gets a warning naming the key it probably meant.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from nameko_like import constants

logger = logging.getLogger(__name__)

#: Keys the framework reads that are not spelt in :mod:`nameko_like.constants`.
_OTHER_KNOWN_KEYS = frozenset({"LOGGING", "SERVICE_CONTAINER_CLS"})

#: How alike (0..1, difflib's ratio) an unknown key must be to a known one
#: to be called a misspelling; 0.8 catches one swapped or missing letter in
#: keys of 8+ characters without flagging unrelated user keys.
SIMILARITY_CUTOFF = 0.8


def known_config_keys() -> frozenset[str]:
    """Every config key nameko_like reads (as spelt in :mod:`nameko_like.constants`)."""
    keys = {
        value for name, value in vars(constants).items()
        if name.endswith("_CONFIG_KEY") and isinstance(value, str)
    }
    return frozenset(keys | _OTHER_KNOWN_KEYS)


def misspelt_keys(config: Mapping[Any, Any],
                  known: Iterable[str] | None = None) -> dict[str, str]:
    """``{unknown key: the known key it probably meant}`` for ``config``'s top level.

    Only upper-case keys are looked at (lower-case ones are the user's own
    by Nameko's convention); keys resembling no known key are left alone.
    """
    known_keys = sorted(known if known is not None else known_config_keys())
    upper_known = [key for key in known_keys if key.isupper()]
    found = {}
    for key in config:
        if not isinstance(key, str) or not key.isupper() or key in known_keys:
            continue
        close = difflib.get_close_matches(key, upper_known, n=1, cutoff=SIMILARITY_CUTOFF)
        if close:
            found[key] = close[0]
    return found


def warn_misspelt_keys(config: Mapping[Any, Any], source: str = "config") -> dict[str, str]:
    """Log one warning per probably misspelt key of ``config``; return them."""
    found = misspelt_keys(config)
    for key, meant in found.items():
        logger.warning("%s: unknown config key %r: did you mean %r? (unknown keys are "
                       "kept for your own code, but nameko_like does not read this one)",
                       source, key, meant)
    return found
