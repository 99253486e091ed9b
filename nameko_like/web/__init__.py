"""HTTP and websocket entrypoints, served by one shared server per container.

``from nameko_like.web.handlers import http`` is the Nameko spelling; it is
also importable from here.
"""

from nameko_like.web.handlers import HttpRequestHandler, http
from nameko_like.web.server import WebServer

__all__ = ["HttpRequestHandler", "WebServer", "http"]
