"""werkzeug URL rules as OpenAPI sees them: ``/trip/<int:trip_id>`` -> ``/trip/{trip_id}``."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.routing import Map, Rule

# werkzeug's variable syntax: <name>, <converter:name>, <converter(args):name>
_VARIABLE = re.compile(r"<(?:(?P<converter>[a-zA-Z_]\w*)(?:\((?P<args>.*?)\))?:)?"
                       r"(?P<name>[a-zA-Z_]\w*)>")

#: JSON schema of each built-in werkzeug converter's values.
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "default": {"type": "string"},
    "string": {"type": "string"},
    "path": {"type": "string"},
    "any": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}


def url_arguments(url: str) -> set[str]:
    """The names of the URL's variables, as werkzeug parses them."""
    rule = Rule(url, endpoint="contract")
    Map([rule])  # binding parses the rule
    return set(rule.arguments)


def openapi_path(url: str) -> str:
    """The OpenAPI path template of a werkzeug rule."""
    return _VARIABLE.sub(lambda match: "{" + match["name"] + "}", url)


def converter_schemas(url: str) -> dict[str, dict[str, Any]]:
    """The schema of each URL variable from its werkzeug converter."""
    return {
        match["name"]: dict(_CONVERTER_SCHEMAS.get(match["converter"] or "default",
                                                   {"type": "string"}))
        for match in _VARIABLE.finditer(url)
    }
