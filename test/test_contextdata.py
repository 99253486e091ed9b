"""Dependency providers exposing keys of the caller's context data."""

import pytest

from nameko_like.contextdata import AuthToken, ContextDataProvider, Language, UserAgent, UserId
from nameko_like.testing.services import dummy, entrypoint_hook


class Tenant(ContextDataProvider):
    context_key = "tenant"


class Service:
    name = "contextual"
    language = Language()
    user_id = UserId()
    user_agent = UserAgent()
    auth_token = AuthToken()
    tenant = Tenant()

    @dummy
    def whoami(self):
        return {
            "language": self.language,
            "user_id": self.user_id,
            "user_agent": self.user_agent,
            "auth_token": self.auth_token,
            "tenant": self.tenant,
        }


@pytest.fixture
def container(container_factory):
    container = container_factory(Service)
    container.start()
    return container


def test_each_provider_injects_its_context_key(container):
    data = {
        "language": "en-gb", "user_id": 42, "user_agent": "curl/8",
        "auth_token": "t0k3n", "tenant": "acme", "unrelated": True,
    }
    with entrypoint_hook(container, "whoami", context_data=data) as whoami:
        assert whoami() == {
            "language": "en-gb", "user_id": 42, "user_agent": "curl/8",
            "auth_token": "t0k3n", "tenant": "acme",
        }


def test_missing_keys_inject_none(container):
    with entrypoint_hook(container, "whoami") as whoami:
        assert set(whoami().values()) == {None}
