"""JSON schemas of contracts, with shared definitions gathered in ``components``.

pydantic puts the definitions a schema uses (models, dataclasses,
TypedDicts) under ``$defs``; a document wants them once, under
``#/components/schemas``, referred to from everywhere. :class:`SchemaSet`
does that for AsyncAPI and OpenAPI alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nameko_like.contracts.errors import ValidationError
from nameko_like.contracts.signature import Contract, Parameter
from nameko_like.extensions import ENTRYPOINT_EXTENSIONS_ATTR, Entrypoint

#: Where the definitions of a document live.
REF_TEMPLATE = "#/components/schemas/{model}"

#: The schema of a :class:`ValidationError` as it reaches an HTTP client.
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": ValidationError.__doc__.split("\n")[0] if ValidationError.__doc__ else "",
    "properties": {
        "error": {"const": "ValidationError"},
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "properties": {"loc": {"type": "string"}, "msg": {"type": "string"},
                           "type": {"type": "string"}},
            "required": ["loc", "msg", "type"],
        }},
    },
    "required": ["error", "message", "errors"],
}


class SchemaSet:
    """Builds schemas whose definitions are shared in :attr:`components`."""

    def __init__(self) -> None:
        #: name -> schema, for ``components.schemas``
        self.components: dict[str, Any] = {}

    def schema_of(self, annotation: Any, mode: str = "validation") -> dict[str, Any]:
        """The JSON schema of ``annotation`` (``mode``: validation or serialization)."""
        from pydantic import TypeAdapter

        schema = TypeAdapter(annotation).json_schema(
            ref_template=REF_TEMPLATE,
            mode="serialization" if mode == "serialization" else "validation")
        self.components.update(schema.pop("$defs", {}))
        title = schema.get("title")
        if isinstance(annotation, type) and schema.get("type") == "object" and title:
            # a model, dataclass or TypedDict: defined once, referred to
            self.components[title] = schema
            return {"$ref": REF_TEMPLATE.format(model=title)}
        return schema

    def parameter(self, parameter: Parameter) -> dict[str, Any]:
        """The schema of one parameter, titled with its name."""
        schema = self.schema_of(parameter.annotation)
        schema.setdefault("title", parameter.name)
        if not parameter.required and _json_able(parameter.default):
            schema.setdefault("default", parameter.default)
        return schema

    def result(self, contract: Contract) -> dict[str, Any]:
        """The schema of what the method returns ({} when not annotated)."""
        annotation = contract.result_annotation
        if contract.result is not None:
            return self.schema_of(annotation, "serialization")
        if annotation in (None, type(None)):
            return {"type": "null"}
        if annotation is str:
            return {"type": "string"}
        return {}


def _json_able(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def declared_entrypoints(service_cls: type) -> Iterator[tuple[str, Entrypoint]]:
    """``(method name, entrypoint declaration)`` of a service class, by method name."""
    for name in sorted(dir(service_cls)):
        method = getattr(service_cls, name, None)
        declared = getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, None)
        if not declared:
            continue
        for entrypoint in sorted(declared, key=lambda item: type(item).__name__):
            yield name, entrypoint


def service_name(service_cls: type) -> str:
    """The service's ``name``, or a clear error naming the class."""
    name = getattr(service_cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{service_cls.__qualname__} has no 'name': it is not a service class")
    return name
