"""Serving contract documents over HTTP: ``nameko_like docs --serve`` and ``CONTRACTS_DOCS_PATH``.

Under a prefix (``""`` for the command, the config's path in a service):

* ``<prefix>/asyncapi.json`` and ``<prefix>/openapi.json``: the documents;
* ``<prefix>/``: a page listing every operation with its summary (built
  here, so it reads offline) and rendering both documents with the AsyncAPI
  and Redoc web components, loaded from a CDN when the browser can reach it.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from nameko_like.contracts.documents import build_document

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="https://unpkg.com/@asyncapi/react-component@1/styles/default.min.css">
</head><body>
<h1>{title}</h1>
<p>Documents: <a href="{prefix}/asyncapi.json">AsyncAPI 3.0</a> (AMQP),
<a href="{prefix}/openapi.json">OpenAPI 3.1</a> (HTTP).</p>
<h2>AMQP operations</h2><ul>{amqp}</ul>
<h2>HTTP operations</h2><ul>{http}</ul>
<h2>AsyncAPI</h2><div id="asyncapi"></div>
<h2>OpenAPI</h2><div id="openapi"></div>
<script src="https://unpkg.com/@asyncapi/react-component@1/browser/standalone/index.js"></script>
<script src="https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"></script>
<script>
if (window.AsyncApiStandalone) AsyncApiStandalone.render(
  {{schema: {{url: "{prefix}/asyncapi.json"}}, config: {{show: {{sidebar: false}}}}}},
  document.getElementById("asyncapi"));
if (window.Redoc) Redoc.init("{prefix}/openapi.json", {{}}, document.getElementById("openapi"));
</script>
</body></html>
"""


class DocumentsApp:
    """A WSGI application serving the documents of ``services`` under ``prefix``."""

    def __init__(self, services: Sequence[type], config: dict[str, Any], prefix: str = "",
                 title: str | None = None, version: str = "1.0.0") -> None:
        self.prefix = prefix.rstrip("/")
        # built now: a service whose types can't be documented fails at once
        self.documents = {
            name: build_document(services, name, config, title=title, version=version)
            for name in ("asyncapi", "openapi")
        }
        self.page = self._page(title or ", ".join(
            str(getattr(service, "name", "")) for service in services))

    def _page(self, title: str) -> str:
        def items(operations: Iterable[tuple[str, str]]) -> str:
            return "".join(f"<li><code>{html.escape(name)}</code>: {html.escape(summary)}</li>"
                           for name, summary in operations) or "<li>none</li>"

        asyncapi = self.documents["asyncapi"]["operations"]
        amqp = [(key, op.get("summary", "")) for key, op in asyncapi.items()]
        http = [(f"{method.upper()} {path}", op.get("summary", ""))
                for path, item in self.documents["openapi"]["paths"].items()
                for method, op in item.items()]
        return _PAGE.format(title=html.escape(title), prefix=html.escape(self.prefix),
                            amqp=items(amqp), http=items(http))

    def response_for(self, path: str) -> Response | None:
        """The response for ``path``, or None when it is not one of ours."""
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix):]
        if rest in ("", "/", "/index.html"):
            return Response(self.page, mimetype="text/html")
        name = rest.strip("/").removesuffix(".json")
        if name in self.documents:
            return Response(json.dumps(self.documents[name], indent=2),
                            mimetype="application/json",
                            headers={"Access-Control-Allow-Origin": "*"})
        return None

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (404 for anything else)."""
        response = self.response_for(Request(environ).path)
        if response is None:
            response = Response("Error: not found\n", status=404)
        return response(environ, start_response)


def with_documents(app: WSGIApplication, service_cls: type, config: dict[str, Any],
                   prefix: str) -> WSGIApplication:
    """``app`` answering ``prefix`` with the documents of ``service_cls`` first."""
    documents = DocumentsApp([service_cls], config, prefix=prefix)

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = documents.response_for(environ.get("PATH_INFO", ""))
        if response is None:
            return app(environ, start_response)
        return response(environ, start_response)

    return serve


def serve_documents(services: Sequence[type], config: dict[str, Any], address: str,
                    title: str | None = None, version: str = "1.0.0",
                    ready: Callable[[str], None] | None = None) -> None:
    """Serve the documents of ``services`` on ``host:port`` until interrupted.

    ``ready(url)`` is called once the server listens.
    """
    from werkzeug.serving import make_server

    from nameko_like.web.server import parse_address

    host, port = parse_address(address)
    server = make_server(host, port, DocumentsApp(services, config, title=title,
                                                  version=version))
    url = f"http://{host}:{server.server_port}/"
    _log.info("serving contract documents on %s", url)
    if ready is not None:
        ready(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
