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


class _Limited(RoutedRequest):
    max_content_length = 4


class _WerkzeugLimited(Request):
    max_content_length = 4


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("ours_cls, theirs_cls", [(RoutedRequest, Request),
                                                  (_Limited, _WerkzeugLimited)])
def test_the_body_stream_is_werkzeugs(terminated, ours_cls, theirs_cls):
    def environ():
        built = create_environ("/", "http://h/", method="POST", data=b"body!")
        if terminated:
            built["wsgi.input_terminated"] = True
        return built

    def outcome(request_cls):
        request = request_cls(environ())
        try:
            return request.get_data(), type(request.stream).__name__
        except Exception as exc:  # noqa: BLE001 - the error is the outcome
            return type(exc).__name__

    assert outcome(ours_cls) == outcome(theirs_cls)


def test_a_shallow_request_has_no_stream():
    request = RoutedRequest(create_environ("/", "http://h/", data=b"x"), shallow=True)
    with pytest.raises(RuntimeError):
        request.stream  # noqa: B018 - reading it raises
