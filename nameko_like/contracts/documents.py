"""Contract documents of service classes, by format name (what ``nameko_like docs`` uses)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

#: The formats, each with the document kind it makes.
FORMATS = ("asyncapi", "openapi")


def build_document(services: Sequence[type], format: str,
                   config: dict[str, Any] | None = None, title: str | None = None,
                   version: str = "1.0.0") -> dict[str, Any]:
    """The ``format`` (``asyncapi`` or ``openapi``) document of ``services``."""
    if format == "asyncapi":
        from nameko_like.contracts.asyncapi import asyncapi_document

        return asyncapi_document(services, config, title=title, version=version)
    if format == "openapi":
        from nameko_like.contracts.openapi import openapi_document

        return openapi_document(services, title=title, version=version)
    raise ValueError(f"unknown document format {format!r}; choose one of {', '.join(FORMATS)}")


def render(document: dict[str, Any], filename: str | None = None) -> str:
    """The document as text: YAML for a ``.yaml``/``.yml`` file name, else JSON."""
    if filename and filename.endswith((".yaml", ".yml")):
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return json.dumps(document, indent=2) + "\n"
