"""``ValidationError``: a payload did not match the annotations of its method.

Importing this module imports neither pydantic nor werkzeug: the
entrypoints refer to it on every request path, validated or not, and an
RPC-only service should not pay for the HTTP stack at start-up.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nameko_like.exceptions import BadRequest, RemoteError, deserialize_to_instance

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

#: HTTP status of a request whose path arguments or JSON body are invalid.
HTTP_STATUS = 422


@deserialize_to_instance
class ValidationError(BadRequest, RemoteError):
    """Arguments, an event payload or an HTTP body failed validation.

    ``errors`` lists one ``{"loc": "field.path", "msg": ..., "type": ...}``
    per failure (never the rejected values). It travels to RPC callers as
    data: a nameko_like caller that imported :mod:`nameko_like.contracts`
    gets this class back, any other caller (Nameko, say) a ``RemoteError``
    whose ``exc_type`` is ``"ValidationError"``; being a ``RemoteError``
    too, both are caught by ``except RemoteError``.

    Args:
        message: one line naming every failing field path.
        errors: the failures, as above.
    """

    def __init__(self, message: str = "", errors: list[dict[str, Any]] | None = None) -> None:
        error_list = [dict(error) for error in errors or []]
        super().__init__("ValidationError", message, exc_path=_PATH,
                         exc_args=[message, error_list])
        self.message = message
        self.errors = error_list
        # what serialize() sends as exc_args, and what rebuilds it
        self.args = (message, error_list)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.errors))

    @property
    def locations(self) -> list[str]:
        """The failing field paths, in order (``["trip.legs.0.to"]``)."""
        return [str(error.get("loc", "")) for error in self.errors]


_PATH = f"{ValidationError.__module__}.{ValidationError.__qualname__}"


def http_response(exc: ValidationError) -> Response:
    """The 422 JSON answer for an invalid HTTP request."""
    from werkzeug.wrappers import Response  # only HTTP entrypoints get here

    body = {"error": "ValidationError", "message": exc.message, "errors": exc.errors}
    return Response(json.dumps(body), status=HTTP_STATUS, mimetype="application/json")
