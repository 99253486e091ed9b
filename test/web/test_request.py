"""RoutedRequest shows a handler exactly what werkzeug's Request would."""

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import create_environ
from werkzeug.wrappers import Request

from nameko_like.web.request import RoutedRequest

_ATTRIBUTES = (
    "method", "scheme", "server", "root_path", "path", "query_string", "remote_addr",
    "full_path", "url", "base_url", "root_url", "host_url", "host", "args", "cookies",
    "content_type", "content_length", "mimetype", "is_secure", "access_route", "shallow",
)


def _environs():
    yield create_environ("/ping", "http://localhost/")
    yield create_environ("/caf\u00e9/x", "https://example.com:8443/app/",
                         query_string="a=1&b=%C3%A9", headers={"Cookie": "c=d"})
    environ = create_environ("//double", "http://h/", method="post",
                             data=b"{}", content_type="application/json")
    environ["REMOTE_ADDR"] = "10.0.0.1"
    yield environ
    environ = create_environ("/", "http://h/")
    environ["SERVER_PORT"] = ""  # a unix socket
    environ["SCRIPT_NAME"] = "/mounted/"
    yield environ
    environ = create_environ("/", "http://h/")
    del environ["SERVER_NAME"], environ["PATH_INFO"], environ["REQUEST_METHOD"]
    environ["PATH_INFO"] = "/bad-\xff"  # not UTF-8
    yield environ


@pytest.mark.parametrize("index", range(len(list(_environs()))))
def test_every_attribute_is_werkzeugs(index):
    # each its own environ: the body is a stream read once
    ours = RoutedRequest(list(_environs())[index])
    theirs = Request(list(_environs())[index])
    assert isinstance(ours, Request)
    for name in _ATTRIBUTES:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert list(ours.headers.items()) == list(theirs.headers.items())
    assert ours.get_data() == theirs.get_data()
    assert ours.environ["werkzeug.request"] is ours


def test_attributes_can_be_assigned_before_and_after_first_read():
    request = RoutedRequest(create_environ("/", "http://h/"), populate_request=False)
    request.headers = Headers({"X-Set": "before"})
    assert request.headers["X-Set"] == "before"
    assert request.remote_addr is None  # create_environ sets no REMOTE_ADDR
    request.remote_addr = "10.1.1.1"
    assert request.remote_addr == "10.1.1.1"
    assert "werkzeug.request" not in request.environ


def test_an_attribute_read_once_is_kept():
    request = RoutedRequest(create_environ("/", "http://h/"))
    headers = request.headers
    assert request.headers is headers


@pytest.mark.parametrize("method, raw_path", [
    ("get", "/ping"), ("GET", "//x/caf\xc3\xa9"), ("Patch", ""), ("POST", "/bad-\xff"),
])
def test_method_and_path_are_werkzeugs_the_second_time_too(method, raw_path):
    for _ in range(2):  # the path of a raw PATH_INFO is remembered
        environ = create_environ("/", "http://h/", method=method)
        environ["PATH_INFO"] = raw_path
        ours, theirs = RoutedRequest(dict(environ)), Request(dict(environ))
        assert (ours.method, ours.path) == (theirs.method, theirs.path)
