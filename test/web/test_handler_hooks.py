"""Overridable hooks of ``HttpRequestHandler`` and return forms the fast path must not skip.

The handler does the default hooks' work inline; a subclass overriding
``handle_result``, ``get_entrypoint_parameters``, ``handle_request`` or the
server's ``context_data_from_headers`` must still be called.
"""

import json
from unittest import mock

import pytest
from werkzeug.wrappers import Response

from nameko_like.containers import ServiceContainer
from nameko_like.web.handlers import HttpRequestHandler, http
from nameko_like.web.server import WebServer


class RecordingServer(WebServer):
    def context_data_from_headers(self, request):
        return {"user": request.headers.get("X-User", "nobody")}


class RecordingHandler(HttpRequestHandler):
    server = RecordingServer()
    results = []

    def get_entrypoint_parameters(self, request):
        args, kwargs = super().get_entrypoint_parameters(request)
        return args, {**kwargs, "extra": "from-hook"}

    def handle_result(self, done, worker_ctx, result, exc_info):
        type(self).results.append((worker_ctx.data.get("user"), result))
        return super().handle_result(done, worker_ctx, result, exc_info)

    def handle_request(self, request):
        response = super().handle_request(request)
        # the Nameko way of adding headers to every response
        response.headers["X-Handled"] = "yes"
        return response


class TeapotResponse(Response):
    default_status = 418

    def __init__(self, body):
        super().__init__(body, headers={"X-Kind": "teapot"})


class Service:
    name = "service"

    @RecordingHandler.decorator("GET", "/hooked/<int:value>")
    def hooked(self, request, value, extra):
        return json.dumps({"value": value, "extra": extra})

    @RecordingHandler.decorator("GET", "/teapot")
    def teapot(self, request, extra):
        return TeapotResponse("short and stout")

    @RecordingHandler.decorator("GET", "/tuple-headers")
    def tuple_headers(self, request, extra):
        return 201, [("X-One", "1"), ("X-Two", "2")], b"made"

    @RecordingHandler.decorator("GET", "/fails")
    def fails(self, request, extra):
        raise ValueError("no")


@pytest.fixture
def service(container_factory, web_config):
    RecordingHandler.results = []
    container = container_factory(Service, web_config)
    container.start()
    return container


def test_overridden_hooks_are_called(service, web_session):
    response = web_session.get("/hooked/7", headers={"X-User": "ann"})
    assert response.json() == {"value": 7, "extra": "from-hook"}
    assert response.headers["X-Handled"] == "yes"
    assert response.headers["Content-Length"] == str(len(response.content))
    assert RecordingHandler.results == [("ann", response.text)]


def test_a_response_subclass_is_sent_as_it_is(service, web_session):
    response = web_session.get("/teapot")
    assert (response.status_code, response.text) == (418, "short and stout")
    assert response.headers["X-Kind"] == "teapot"
    assert response.headers["X-Handled"] == "yes"


def test_headers_given_in_a_tuple_are_sent(service, web_session):
    response = web_session.get("/tuple-headers")
    assert (response.status_code, response.content) == (201, b"made")
    assert (response.headers["X-One"], response.headers["X-Two"]) == ("1", "2")
    assert response.headers["X-Handled"] == "yes"


def test_an_error_response_can_be_changed_by_an_overridden_handle_request(
        service, web_session):
    response = web_session.get("/fails")
    assert response.status_code == 500
    assert response.text == "Error: ValueError: no\n"
    assert response.headers["X-Handled"] == "yes"
    assert RecordingHandler.results[-1][1] is None


class PlainService:
    name = "plain"

    @http("GET", "/plain/<int:value>")
    def plain(self, request, value):
        return str(value)


def test_hooks_patched_on_the_instance_are_called(container_factory, web_config, web_session):
    # Tests often patch one handler's hooks (mock.patch.object) rather than
    # subclass: the inline defaults must not skip them.
    container = container_factory(PlainService, web_config)
    container.start()
    handler = next(ext for ext in container.entrypoints if isinstance(ext, HttpRequestHandler))
    server = handler.server
    seen = []

    def parameters(request):
        seen.append("parameters")
        return (request,), {"value": request.path_values["value"] * 2}

    def handle_result(done, worker_ctx, result, exc_info):
        seen.append(("result", worker_ctx.data.get("who")))
        done.send(result, exc_info)
        return result, exc_info

    def context_data(request):
        seen.append("context")
        return {"who": "patched"}

    with mock.patch.object(handler, "get_entrypoint_parameters", parameters), \
            mock.patch.object(handler, "handle_result", handle_result), \
            mock.patch.object(server, "context_data_from_headers", context_data):
        response = web_session.get("/plain/21")
    assert response.text == "42"
    assert seen == ["context", "parameters", ("result", "patched")]
    assert web_session.get("/plain/21").text == "21"  # unpatched again


class TenantContainer(ServiceContainer):
    """Adds to the context data of every worker, as a Nameko subclass could."""

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        context_data["tenant"] = "t1"
        return super().spawn_worker(entrypoint, args, kwargs, context_data=context_data,
                                    handle_result=handle_result)


class TenantService:
    name = "tenant"

    @http("GET", "/tenant")
    def tenant(self, request):
        return "ok"


def test_a_replaced_spawn_worker_is_given_a_context_data_dict(web_config, web_session):
    container = TenantContainer(TenantService, web_config)
    container.start()
    try:
        response = web_session.get("/tenant")
    finally:
        container.kill()
    assert (response.status_code, response.text) == (200, "ok")
