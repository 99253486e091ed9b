"""A service method's contract, read from its type hints (needs pydantic).

:func:`method_contract` turns ``def create(self, trip: Trip, notify: bool =
False) -> TripId`` into a :class:`Contract`: one pydantic ``TypeAdapter``
over all annotated arguments (a TypedDict keyed by parameter name, so one
validation call checks them all and error locations start with the
parameter's name), one for an HTTP JSON body and one for the result. The
same adapters give the JSON schemas the documents are built from.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Iterable
from typing import Any, cast

import typing_extensions
from pydantic import PydanticSchemaGenerationError, PydanticUserError, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from werkzeug.wrappers import Response

from nameko_like.contracts.errors import ValidationError
from nameko_like.exceptions import ConfigurationError

_log = logging.getLogger(__name__)

_EMPTY = inspect.Parameter.empty
#: Return annotations that an HTTP entrypoint answers as they are.
_HTTP_PASSTHROUGH = (str, bytes, Response, tuple)
#: What the ValidationError raised for an invalid HTTP body is told.
BODY_LOCATION = "body"


def _hints(method: Any, where: str) -> dict[str, Any]:
    """The method's resolved annotations; a clear error when one can't be."""
    try:
        return typing.get_type_hints(method, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - NameError, TypeError... all mean the same
        raise ConfigurationError(
            f"cannot resolve the type hints of {where}: {exc}; define the types they name "
            "at module level (importable from the method's module)") from None


def _adapter(annotation: Any, what: str) -> TypeAdapter[Any]:
    """A TypeAdapter, or a ConfigurationError naming the fix."""
    try:
        return TypeAdapter(annotation)
    except (PydanticSchemaGenerationError, PydanticUserError) as exc:
        raise ConfigurationError(
            f"cannot validate {what}: {exc.message}; annotate it with a JSON-able type "
            "(plain types, a dataclass, a TypedDict or a pydantic model), or leave the "
            "method unvalidated") from None


def validation_error(exc: PydanticValidationError, prefix: tuple[str, ...] = ()) -> ValidationError:
    """Our ValidationError for pydantic's: field paths and messages, no input values."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in (*prefix, *error["loc"])) or BODY_LOCATION
        errors.append({"loc": loc, "msg": error["msg"], "type": error["type"]})
    message = "; ".join(f"{error['loc']}: {error['msg']}" for error in errors)
    return ValidationError(message, errors)


class Parameter:
    """One documented parameter: its name, annotation and whether it is required."""

    def __init__(self, name: str, annotation: Any, required: bool, default: Any) -> None:
        self.name = name
        self.annotation = annotation
        self.required = required
        self.default = default


class Contract:
    """What one method takes and returns, and how to check and convert it.

    Args:
        where: ``service.method``, for messages.
        signature: the method's signature without ``self`` (nor, for HTTP,
            the request).
        hints: its resolved annotations.
        body_name: the HTTP parameter that receives the JSON body, if any.
        http: whether the method serves HTTP (results pass through as
            strings, bytes, tuples and responses).
        summary: one line saying what the method does.
    """

    def __init__(self, where: str, signature: inspect.Signature, hints: dict[str, Any],
                 body_name: str | None = None, http: bool = False, summary: str = "") -> None:
        self.where = where
        #: the first line of the method's docstring
        self.summary = summary
        self.signature = signature
        self.parameters: list[Parameter] = []
        fields: dict[str, Any] = {}
        for parameter in signature.parameters.values():
            annotation = hints.get(parameter.name, Any)
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                annotation = tuple[annotation, ...]  # type: ignore[valid-type]
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                annotation = dict[str, annotation]  # type: ignore[valid-type]
            required = parameter.default is _EMPTY and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            self.parameters.append(
                Parameter(parameter.name, annotation, required, parameter.default))
            if parameter.name != body_name and parameter.name in hints:
                # a parameter may be left out of a call: it then keeps its default
                fields[parameter.name] = (annotation if required
                                          else typing_extensions.NotRequired[annotation])
        self.annotated = bool(fields) or body_name is not None
        self.arguments: TypeAdapter[Any] | None = None
        if fields:
            typed_dict = cast("Any", typing_extensions.TypedDict)
            self.arguments = _adapter(typed_dict("Arguments", fields),
                                      f"the arguments of {where}")
        self.body_name = body_name
        self.body: TypeAdapter[Any] | None = None
        if body_name is not None:
            self.body = _adapter(hints[body_name], f"the body ({body_name}) of {where}")
        self.result_annotation = hints.get("return")
        self.result = self._result_adapter(self.result_annotation, http)

    @staticmethod
    def _result_adapter(annotation: Any, http: bool) -> TypeAdapter[Any] | None:
        if annotation in (None, type(None), Any):
            return None
        if http and (typing.get_origin(annotation) is tuple or (
                isinstance(annotation, type) and issubclass(annotation, _HTTP_PASSTHROUGH))):
            return None
        try:
            return TypeAdapter(annotation)
        except (PydanticSchemaGenerationError, PydanticUserError):
            # a result type pydantic can't describe is returned as it is
            return None

    def validate_arguments(self, args: Iterable[Any], kwargs: dict[str, Any]
                           ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` converted to the annotated types.

        Raises :class:`ValidationError` naming each failing field. Arguments
        that do not fit the signature are returned unchanged: the container
        answers them with ``IncorrectSignature``, as without validation.
        """
        if self.arguments is None:
            return tuple(args), kwargs
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            return tuple(args), kwargs
        try:
            converted = self.arguments.validate_python(bound.arguments)
        except PydanticValidationError as exc:
            raise validation_error(exc) from None
        bound.arguments.update(converted)
        return bound.args, bound.kwargs

    def validate_body(self, data: bytes) -> Any:
        """The JSON body ``data`` parsed and converted to the body parameter's type."""
        assert self.body is not None
        try:
            return self.body.validate_json(data)
        except PydanticValidationError as exc:
            raise validation_error(exc, (BODY_LOCATION,)) from None

    def dump_result(self, result: Any) -> Any:
        """``result`` as JSON-able data, serialized by its annotated type."""
        if self.result is None:
            return result
        try:
            return self.result.dump_python(result, mode="json", warnings=False)
        except Exception:  # noqa: BLE001 - the serializer then reports the value as usual
            _log.warning("%s returned a value its annotation can't serialize", self.where,
                         exc_info=True)
            return result


def method_contract(service_cls: type, method_name: str, skip: int = 0,
                    path_names: Iterable[str] | None = None) -> Contract:
    """The contract of ``service_cls.method_name``.

    ``skip`` leading parameters after ``self`` are not part of it (HTTP's
    request). With ``path_names`` (HTTP), the one annotated parameter that
    is not a URL argument receives the JSON body.
    """
    method = getattr(service_cls, method_name)
    where = f"{getattr(service_cls, 'name', service_cls.__name__)}.{method_name}"
    signature = inspect.signature(method, follow_wrapped=False)
    parameters = list(signature.parameters.values())[1 + skip:]
    signature = signature.replace(parameters=parameters)
    hints = _hints(method, where)
    body_name = None
    if path_names is not None:
        names = set(path_names)
        candidates = [p.name for p in parameters if p.name not in names and p.name in hints
                      and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if len(candidates) > 1:
            raise ConfigurationError(
                f"{where} has {len(candidates)} annotated parameters that are not URL "
                f"arguments ({', '.join(candidates)}); one receives the JSON body: make the "
                "others URL arguments or combine them into one type")
        body_name = candidates[0] if candidates else None
    summary = (inspect.getdoc(method) or "").strip().split("\n")[0]
    return Contract(where, signature, hints, body_name=body_name, http=path_names is not None,
                    summary=summary)
