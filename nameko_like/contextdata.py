"""Dependency providers exposing one key of the worker's context data."""

from __future__ import annotations

from typing import Any

from nameko_like.constants import (
    AUTH_TOKEN_CONTEXT_KEY,
    LANGUAGE_CONTEXT_KEY,
    USER_AGENT_CONTEXT_KEY,
    USER_ID_CONTEXT_KEY,
)
from nameko_like.extensions import DependencyProvider
from nameko_like.worker_context import WorkerContext


class ContextDataProvider(DependencyProvider):
    """Injects ``worker_ctx.data[context_key]`` (None when absent).

    Subclass and set ``context_key`` to expose another key.
    """

    context_key: str = ""

    def get_dependency(self, worker_ctx: WorkerContext) -> Any:
        """Return the value of this provider's context key for the call.

        Whatever the caller put there: context data is the caller's.
        """
        return worker_ctx.data.get(self.context_key)


class Language(ContextDataProvider):
    """The caller's language (context key ``language``)."""

    context_key = LANGUAGE_CONTEXT_KEY


class UserId(ContextDataProvider):
    """The calling user's id (context key ``user_id``)."""

    context_key = USER_ID_CONTEXT_KEY


class UserAgent(ContextDataProvider):
    """The caller's user agent (context key ``user_agent``)."""

    context_key = USER_AGENT_CONTEXT_KEY


class AuthToken(ContextDataProvider):
    """The caller's auth token (context key ``auth_token``)."""

    context_key = AUTH_TOKEN_CONTEXT_KEY
