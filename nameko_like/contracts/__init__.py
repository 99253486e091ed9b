"""Typed contracts: payloads validated from type hints, AsyncAPI and OpenAPI documents.

* :func:`validated` (or the ``VALIDATE_CONTRACTS`` config key) makes
  ``@rpc``, ``@event_handler``, ``@consume`` and ``@http`` entrypoints
  validate and convert their payloads from the method's annotations (plain
  types, dataclasses, TypedDicts, pydantic models; needs the ``contracts``
  extra, pydantic v2). Invalid input never reaches the method: it raises
  :class:`ValidationError` (RPC callers get it back, HTTP clients a 422,
  messages are dead-lettered).
* :mod:`nameko_like.contracts.documents` builds AsyncAPI 3.0 and OpenAPI 3.1
  documents from service classes; ``nameko_like docs`` writes or serves them.
* :mod:`nameko_like.contracts.clients` gives RPC proxies the signatures of
  the service they call, for type checkers and optional client-side checks.

This package imports only light modules: pydantic is loaded when something
is validated or documented.
"""

from nameko_like.contracts.errors import ValidationError
from nameko_like.contracts.optin import validated

__all__ = ["ValidationError", "validated"]
