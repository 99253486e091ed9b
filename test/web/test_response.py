"""WholeResponse answers WSGI exactly as werkzeug's Response would."""

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import create_environ
from werkzeug.wrappers import Response

from nameko_like.web.response import WholeResponse


def _answer(response, method="GET"):
    started = []

    def start_response(status, headers, exc_info=None):
        started.append((status, list(headers)))

    iterable = response(create_environ("/here", "http://example.com/", method=method),
                        start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return started, body


@pytest.mark.parametrize("args, kwargs", [
    (("pong",), {}),
    ((b"\x00raw",), {"status": 201}),
    (("{}",), {"status": 202, "headers": {"X-A": "1", "Content-Type": "application/json"}}),
    (("moved",), {"status": 302, "headers": {"Location": "/caf\u00e9"}}),
    (("here",), {"headers": {"Content-Location": "/\u00fcber"}}),
    (("",), {"status": 204}),
    (("same",), {"status": 304}),
    ((None,), {}),
    (([b"a", b"b"],), {}),
    (("typed",), {"mimetype": "text/html"}),
    (("typed",), {"content_type": "text/csv"}),
    (("teapot",), {"status": "418 I'M A TEAPOT"}),
])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_same_answer_as_werkzeug(args, kwargs, method):
    assert _answer(WholeResponse(*args, **kwargs), method) == _answer(
        Response(*args, **kwargs), method)


def test_without_content_length_werkzeug_adds_it():
    response = WholeResponse("pong")
    del response.headers["Content-Length"]
    assert _answer(response) == ([("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                              ("Content-Length", "4")])], b"pong")


def test_on_close_callbacks_run():
    closed = []
    response = WholeResponse("pong")
    response.call_on_close(lambda: closed.append(True))
    assert _answer(response)[1] == b"pong"
    assert closed == [True]


def test_changes_after_construction_are_sent():
    response = WholeResponse("pong")
    response.data = b"changed"
    response.headers["X-Late"] = "yes"
    response.status_code = 203
    started, body = _answer(response)
    assert body == b"changed"
    assert started[0][0] == Response(status=203).status
    assert ("Content-Length", "7") in started[0][1] and ("X-Late", "yes") in started[0][1]


@pytest.mark.parametrize("args, kwargs", [
    (("pong",), {}),
    ((b"\x00raw",), {"status": 201}),
    (("caf\u00e9",), {"status": 404}),
    ((b"",), {"status": 500}),
    (("odd",), {"status": 599}),
    (("zero",), {"status": 0}),
    (("",), {"status": 204}),
])
def test_built_from_a_body_it_looks_like_werkzeugs(args, kwargs):
    ours, theirs = WholeResponse(*args, **kwargs), Response(*args, **kwargs)
    assert isinstance(ours, Response)
    assert (ours.status, ours.status_code) == (theirs.status, theirs.status_code)
    assert ours.headers == theirs.headers
    assert list(ours.headers.items()) == list(theirs.headers.items())
    assert (ours.data, ours.content_length, ours.mimetype, ours.mimetype_params) == (
        theirs.data, theirs.content_length, theirs.mimetype, theirs.mimetype_params)
    assert ours.response == theirs.response and ours.direct_passthrough is False
    assert repr(ours) == repr(theirs).replace("Response", "WholeResponse", 1)


def test_headers_changed_before_answering_are_sent():
    response = WholeResponse("pong", status=201)
    response.headers["X-Extra"] = "1"
    response.headers.add("Set-Cookie", "a=b")
    response.set_cookie("c", "d")
    started, body = _answer(response)
    expected = Response("pong", status=201)
    expected.headers["X-Extra"] = "1"
    expected.headers.add("Set-Cookie", "a=b")
    expected.set_cookie("c", "d")
    assert (started, body) == _answer(expected)


def test_headers_replaced_as_a_whole_are_sent():
    response = WholeResponse("pong")
    response.headers = Headers([("Content-Length", "4"), ("X-Only", "this")])
    assert _answer(response) == ([("200 OK", [("Content-Length", "4"), ("X-Only", "this")])],
                                 b"pong")


def test_a_start_response_adding_headers_does_not_change_the_response():
    response = WholeResponse("pong")

    def start_response(status, headers, exc_info=None):
        headers.append(("X-Middleware", "1"))

    response(create_environ("/"), start_response)
    assert "X-Middleware" not in response.headers
    assert _answer(response) == _answer(Response("pong"))


def test_a_status_changed_after_construction_is_sent():
    response = WholeResponse("pong")
    response.status = "299 FINE"
    assert _answer(response)[0][0][0] == "299 FINE"


def test_subclasses_are_built_the_werkzeug_way():
    class Upper(WholeResponse):
        def set_data(self, value):
            super().set_data(value.upper())

    assert _answer(Upper("pong")) == _answer(Response("PONG"))

