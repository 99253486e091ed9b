"""@http entrypoints over real HTTP: return forms, methods and error mapping."""

import json

import pytest
from werkzeug.exceptions import BadRequest, Forbidden
from werkzeug.wrappers import Response

from nameko_like.web.handlers import HttpRequestHandler, http


class Unauthorized(Exception):
    pass


class Service:
    name = "service"

    @http("GET", "/text")
    def text(self, request):
        return "plain text"

    @http("GET", "/bytes")
    def raw_bytes(self, request):
        return b"\x00\x01 raw"

    @http("GET", "/status")
    def with_status(self, request):
        return 201, "created"

    @http("GET", "/headers")
    def with_headers(self, request):
        return 202, {"X-Answer": "42", "Content-Type": "application/json"}, json.dumps({"a": 1})

    @http("GET", "/response")
    def response(self, request):
        return Response("custom", status=418, headers={"X-Custom": "yes"})

    @http("GET,POST", "/both")
    def both(self, request):
        return f"{request.method}:{request.get_data(as_text=True)}"

    @http("GET", "/query")
    def query(self, request):
        return request.args["name"]

    @http("GET", "/expected", expected_exceptions=Unauthorized)
    def expected(self, request):
        raise Unauthorized("who are you?")

    @http("GET", "/bad-request")
    def bad_request(self, request):
        raise BadRequest("missing field")

    @http("GET", "/forbidden")
    def forbidden(self, request):
        raise Forbidden("not yours")

    @http("GET", "/unexpected")
    def unexpected(self, request):
        raise ValueError("secret internals")

    @http("GET", "/bad-return")
    def bad_return(self, request):
        return (1, 2, 3, 4)

    @http("POST", "/json")
    def json_body(self, request):
        return json.dumps({"got": request.get_json()["value"]})

    @http("GET", "/none")
    def none(self, request):
        return None

    @http("GET", "/dict")
    def dict_body(self, request):
        return {"a": 1}

    @http("POST", "/content-type")
    def content_type(self, request):
        return request.content_type

    @http("GET", "/mismatch/<int:value>")
    def mismatch(self, request, other):
        return "never"


@pytest.fixture
def service(container_factory, web_config):
    container = container_factory(Service, web_config)
    container.start()
    return container


@pytest.mark.parametrize("path, status, body", [
    ("/text", 200, b"plain text"),
    ("/bytes", 200, b"\x00\x01 raw"),
    ("/status", 201, b"created"),
    ("/headers", 202, b'{"a": 1}'),
    ("/response", 418, b"custom"),
])
def test_return_forms(service, web_session, path, status, body):
    response = web_session.get(path)
    assert response.status_code == status
    assert response.content == body


def test_default_content_type_is_plain_text(service, web_session):
    assert web_session.get("/text").headers["Content-Type"] == "text/plain; charset=utf-8"


def test_returned_headers_are_sent(service, web_session):
    response = web_session.get("/headers")
    assert response.headers["X-Answer"] == "42"
    assert response.headers["Content-Type"] == "application/json"
    assert web_session.get("/response").headers["X-Custom"] == "yes"


def test_several_methods_on_one_rule(service, web_session):
    assert web_session.get("/both").text == "GET:"
    assert web_session.post("/both", data="body").text == "POST:body"


def test_request_is_a_werkzeug_request(service, web_session):
    assert web_session.get("/query", params={"name": "ann"}).text == "ann"
    assert web_session.post("/json", json={"value": 7}).json() == {"got": 7}


def test_head_gets_headers_without_body(service, web_session):
    response = web_session.head("/text")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == str(len("plain text"))


@pytest.mark.parametrize("path, status, body", [
    ("/expected", 400, "Error: Unauthorized: who are you?\n"),
    ("/bad-request", 400, "Error: BadRequest: 400 Bad Request: missing field\n"),
    ("/forbidden", 403, "Error: Forbidden: 403 Forbidden: not yours\n"),
    ("/unexpected", 500, "Error: ValueError: secret internals\n"),
])
def test_errors(service, web_session, path, status, body):
    response = web_session.get(path)
    assert response.status_code == status
    assert response.text == body
    assert "Traceback" not in response.text


def test_malformed_json_is_a_bad_request(service, web_session):
    response = web_session.post("/json", data="{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.text.startswith("Error: BadRequest: ")


def test_unusable_return_value_is_a_500(service, web_session):
    response = web_session.get("/bad-return")
    assert response.status_code == 500
    assert response.text.startswith("Error: TypeError: ")


def test_url_arguments_not_matching_the_method_are_a_400(service, web_session):
    # IncorrectSignature is one of Nameko's BadRequest errors: 400 there too.
    response = web_session.get("/mismatch/1")
    assert response.status_code == 400
    assert response.text.startswith("Error: IncorrectSignature: ")


@pytest.mark.parametrize("path, shown", [("/none", "None"), ("/dict", "{'a': 1}")])
def test_a_body_that_is_not_a_string_is_a_500(service, web_session, path, shown):
    response = web_session.get(path)
    assert response.status_code == 500
    assert response.text == f"Error: TypeError: Payload must be a string. Got `{shown}`\n"


def test_a_request_without_content_type_is_text_plain(service, web_session):
    # As under eventlet's WSGI server, which Nameko uses.
    assert web_session.post("/content-type", data=b"").text == "text/plain"


def test_errors_are_logged_with_their_traceback(service, web_session, caplog):
    web_session.get("/unexpected")
    [record] = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ValueError]
    assert record.levelname == "ERROR"


def test_expected_errors_are_logged_as_warnings(service, web_session, caplog):
    web_session.get("/expected")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("Unauthorized" in r.getMessage() for r in warnings)
    assert not any(r.levelname == "ERROR" for r in caplog.records)


def test_invalid_method_declaration_fails_fast():
    with pytest.raises(ValueError, match="GET,POST"):
        HttpRequestHandler("GET POST", "/x")


def test_decorator_registers_an_entrypoint():
    [entrypoint] = Service.both.nameko_entrypoints
    assert isinstance(entrypoint, HttpRequestHandler)
    assert (entrypoint.method, entrypoint.url) == ("GET,POST", "/both")
