"""WholeResponse answers WSGI exactly as werkzeug's Response would."""

import pytest
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
