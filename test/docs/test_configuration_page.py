"""docs/configuration.rst documents every config key nameko_like reads."""

import re
from pathlib import Path

from nameko_like import constants

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.rst"


def config_keys():
    return {
        value for name, value in vars(constants).items()
        if name.endswith(("_CONFIG_KEY", "_CONTAINER_CLS")) and isinstance(value, str)
    }


def documented_keys():
    # Each key is a definition-list term: the key alone on its line, in ``.
    return set(re.findall(r"^``([A-Za-z_]+)``$", PAGE.read_text(), re.MULTILINE))


def test_every_config_key_is_documented():
    assert config_keys() - documented_keys() == set()


def test_only_real_keys_are_documented():
    assert documented_keys() - config_keys() == {"LOGGING"}


def test_documented_defaults_match():
    text = PAGE.read_text()
    for key, default in [
        ("AMQP_URI", constants.DEFAULT_AMQP_URI),
        ("HEARTBEAT", constants.DEFAULT_HEARTBEAT),
        ("max_workers", constants.DEFAULT_MAX_WORKERS),
        ("parent_calls_tracked", constants.DEFAULT_PARENT_CALLS_TRACKED),
        ("rpc_exchange", constants.DEFAULT_RPC_EXCHANGE),
        ("RPC_REPLY_QUEUE_TTL", constants.DEFAULT_RPC_REPLY_QUEUE_TTL),
        ("serializer", constants.DEFAULT_SERIALIZER),
        ("MAX_REDELIVERIES", constants.DEFAULT_MAX_REDELIVERIES),
        ("MAX_MESSAGE_SIZE", constants.DEFAULT_MAX_MESSAGE_SIZE),
        ("MAX_DECODED_SIZE", constants.DEFAULT_MAX_DECODED_SIZE),
        ("SHUTDOWN_GRACE_PERIOD", constants.DEFAULT_SHUTDOWN_GRACE_PERIOD),
        ("WEB_SERVER_ADDRESS", constants.DEFAULT_WEB_SERVER_ADDRESS),
        ("WEB_MAX_CONTENT_LENGTH", constants.DEFAULT_WEB_MAX_CONTENT_LENGTH),
        ("WEB_SOCKET_TIMEOUT", int(constants.DEFAULT_WEB_SOCKET_TIMEOUT)),
        ("WEB_MAX_CONNECTIONS", constants.DEFAULT_WEB_MAX_CONNECTIONS),
    ]:
        entry = text.split(f"``{key}``\n", 1)[1].split("\n``", 1)[0]
        assert f"Default ``{default}``" in " ".join(entry.split()), key
