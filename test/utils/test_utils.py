"""Tests for nameko_like.utils."""

import collections
import re
import threading
from types import SimpleNamespace

import pytest

from nameko_like.utils import (
    REDACTED,
    get_redacted_args,
    import_from_path,
    sanitize_url,
)


class Service:
    name = "service"

    def login(self, username, password, remember=False):
        pass

    def update(self, user_id, credentials, items, *extra, **options):
        pass

    def plain(this, value):  # the instance parameter need not be "self"
        pass


def make_entrypoint(method_name, sensitive_arguments=()):
    """The attributes get_redacted_args reads from an entrypoint."""
    return SimpleNamespace(
        container=SimpleNamespace(service_cls=Service),
        method_name=method_name,
        sensitive_arguments=sensitive_arguments,
    )


# --- get_redacted_args --------------------------------------------------------


def test_binds_arguments_by_name_with_defaults():
    entrypoint = make_entrypoint("login")
    assert get_redacted_args(entrypoint, "matt", "secret") == {
        "username": "matt", "password": "secret", "remember": False}


def test_binds_keyword_arguments():
    entrypoint = make_entrypoint("login")
    assert get_redacted_args(entrypoint, "matt", password="x",
                             remember=True) == {
        "username": "matt", "password": "x", "remember": True}


def test_redacts_whole_argument():
    entrypoint = make_entrypoint("login", ("password",))
    assert get_redacted_args(entrypoint, "matt", "secret") == {
        "username": "matt", "password": REDACTED, "remember": False}


def test_single_string_sensitive_argument():
    entrypoint = make_entrypoint("login", "password")
    assert get_redacted_args(entrypoint, "matt", "secret")["password"] == \
        REDACTED


def test_none_sensitive_arguments():
    entrypoint = make_entrypoint("login", None)
    assert get_redacted_args(entrypoint, "matt", "secret")["password"] == \
        "secret"


def test_instance_parameter_with_another_name():
    entrypoint = make_entrypoint("plain", "value")
    assert get_redacted_args(entrypoint, 1) == {"value": REDACTED}


def test_redacts_dict_key_and_list_index_only():
    entrypoint = make_entrypoint(
        "update", ("credentials.password", "items[1]"))
    credentials = {"user": "matt", "password": "secret"}
    items = ["a", "b", "c"]
    result = get_redacted_args(entrypoint, 7, credentials, items)
    assert result["credentials"] == {"user": "matt", "password": REDACTED}
    assert result["items"] == ["a", REDACTED, "c"]
    assert result["user_id"] == 7


def test_callers_arguments_are_not_changed():
    entrypoint = make_entrypoint(
        "update", ("credentials.nested.token", "items[0].key"))
    credentials = {"nested": {"token": "t", "other": 1}}
    items = [{"key": "k"}]
    result = get_redacted_args(entrypoint, 1, credentials, items)
    assert result["credentials"] == {"nested": {"token": REDACTED,
                                                "other": 1}}
    assert result["items"] == [{"key": REDACTED}]
    assert credentials == {"nested": {"token": "t", "other": 1}}
    assert items == [{"key": "k"}]


def test_nested_paths_combine_keys_and_indexes():
    entrypoint = make_entrypoint("update", ("credentials.keys[1][0]",))
    credentials = {"keys": [["a"], ["b", "c"]]}
    result = get_redacted_args(entrypoint, 1, credentials, [])
    assert result["credentials"] == {"keys": [["a"], [REDACTED, "c"]]}


def test_negative_index():
    entrypoint = make_entrypoint("update", ("items[-1]",))
    assert get_redacted_args(entrypoint, 1, {}, [1, 2])["items"] == [
        1, REDACTED]


def test_tuples_and_namedtuples_keep_their_type():
    Pair = collections.namedtuple("Pair", "left right")
    entrypoint = make_entrypoint("update", ("items[0]", "credentials[1]"))
    result = get_redacted_args(entrypoint, 1, Pair("l", "r"), ("x", "y"))
    assert result["items"] == (REDACTED, "y")
    assert type(result["items"]) is tuple
    assert result["credentials"] == Pair("l", REDACTED)


@pytest.mark.parametrize("spec", [
    "nonexistent",
    "credentials.missing",
    "credentials.password.deeper",  # a str has no keys
    "items[5]",
    "items.name",  # a list has no named keys
    "user_id[0]",  # an int has no items
    ".credentials",
    "[0]",
    "credentials..password",
    "items[x]",
    "",
])
def test_unknown_or_malformed_paths_are_left_alone(spec):
    entrypoint = make_entrypoint("update", (spec,))
    credentials = {"password": "secret"}
    result = get_redacted_args(entrypoint, 1, credentials, ["a"])
    assert result == {"user_id": 1, "credentials": {"password": "secret"},
                      "items": ["a"], "extra": (), "options": {}}


def test_var_positional_and_keyword_arguments():
    entrypoint = make_entrypoint("update", ("extra[0]", "options.token"))
    result = get_redacted_args(entrypoint, 1, {}, [], "e1", "e2",
                               token="t", other="o")
    assert result["extra"] == (REDACTED, "e2")
    assert result["options"] == {"token": REDACTED, "other": "o"}


def test_arguments_that_cannot_be_deep_copied():
    # Only containers on a redacted path are copied, so unrelated values
    # such as locks pass through untouched.
    lock = threading.Lock()
    entrypoint = make_entrypoint("update", ("credentials.password",))
    result = get_redacted_args(entrypoint, lock, {"password": "p", "l": lock},
                               [])
    assert result["user_id"] is lock
    assert result["credentials"] == {"password": REDACTED, "l": lock}


def test_bad_call_signature_raises_type_error():
    entrypoint = make_entrypoint("login")
    with pytest.raises(TypeError):
        get_redacted_args(entrypoint, "only-one")


# --- import_from_path ---------------------------------------------------------


def test_import_none():
    assert import_from_path(None) is None


def test_import_with_colon():
    assert import_from_path("collections:OrderedDict") is \
        collections.OrderedDict


def test_import_with_dots():
    assert import_from_path("collections.OrderedDict") is \
        collections.OrderedDict


def test_import_nested_attribute():
    assert import_from_path("collections:OrderedDict.fromkeys") == \
        collections.OrderedDict.fromkeys
    assert import_from_path("collections.OrderedDict.fromkeys") == \
        collections.OrderedDict.fromkeys


def test_import_module():
    import os.path
    assert import_from_path("os.path") is os.path
    assert import_from_path("nameko_like.utils") is \
        __import__("nameko_like.utils").utils


def test_import_submodule_of_package():
    from nameko_like import exceptions
    assert import_from_path("nameko_like.exceptions.RemoteError") is \
        exceptions.RemoteError
    assert import_from_path("nameko_like.exceptions:RemoteError") is \
        exceptions.RemoteError


def test_missing_attribute_message():
    with pytest.raises(ImportError) as exc_info:
        import_from_path("collections.NoSuchThing")
    message = str(exc_info.value)
    assert "collections.NoSuchThing" in message
    assert "`collections` has no attribute `NoSuchThing`" in message


def test_missing_nested_attribute_message():
    with pytest.raises(ImportError, match=re.escape("`collections.OrderedDict` has no "
                                                    "attribute `nope`")):
        import_from_path("collections:OrderedDict.nope")


def test_missing_module_message():
    with pytest.raises(ImportError, match="no module named `no_such_module`"):
        import_from_path("no_such_module.Thing")
    with pytest.raises(ImportError, match="no module named `no_such_module`"):
        import_from_path("no_such_module:Thing")


def test_missing_submodule_message():
    with pytest.raises(ImportError,
                       match="`nameko_like` has no attribute `no_such`"):
        import_from_path("nameko_like.no_such.Thing")


def test_broken_dependency_is_not_reported_as_missing_target(tmp_path,
                                                             monkeypatch):
    # A module that exists but imports something missing must surface the
    # real cause, not claim the module itself is missing.
    (tmp_path / "uses_missing_dep.py").write_text(
        "import definitely_not_installed_dep\nThing = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as exc_info:
        import_from_path("uses_missing_dep.Thing")
    assert exc_info.value.name == "definitely_not_installed_dep"


@pytest.mark.parametrize("path", ["", ".relative", ":Name"])
def test_invalid_paths(path):
    with pytest.raises(ImportError, match="could not be imported"):
        import_from_path(path)


# --- sanitize_url -------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("amqp://user:pass@host:5672/vhost",
     f"amqp://user:{REDACTED}@host:5672/vhost"),
    ("amqp://guest:guest@localhost", f"amqp://guest:{REDACTED}@localhost"),
    ("amqp://user:p%40ss@host/%2F", f"amqp://user:{REDACTED}@host/%2F"),
    ("amqp://user:p@ss@host:5672/", f"amqp://user:{REDACTED}@host:5672/"),
    ("amqp://user:a:b@host", f"amqp://user:{REDACTED}@host"),
    ("redis://:secret@localhost:6379/0",
     f"redis://:{REDACTED}@localhost:6379/0"),
    ("amqps://u:p@[::1]:5671/vh?heartbeat=10",
     f"amqps://u:{REDACTED}@[::1]:5671/vh?heartbeat=10"),
])
def test_sanitize_url_hides_password(url, expected):
    assert sanitize_url(url) == expected


@pytest.mark.parametrize("url", [
    "amqp://user@host:5672/vhost",
    "amqp://host:5672/",
    "amqp://user:@host/",
    "memory://",
    "http://localhost:8000/path?q=1",
    "not a url",
])
def test_sanitize_url_leaves_urls_without_password(url):
    assert sanitize_url(url) == url


def test_sanitize_unparseable_url_hides_everything():
    assert sanitize_url("amqp://user:pw@[::1/x") == f"amqp://{REDACTED}"
