"""A werkzeug ``Response`` that is cheap to build and answers WSGI in one step.

What an ``@http`` method usually returns is a body in memory (``str`` or
``bytes``) and maybe a status: werkzeug's ``Response`` for it builds a
``Headers`` object (validating each header it is given), parses its status
and, when called, copies the headers into a new ``Headers``, rescans them
for ``Location``/``Content-Location`` and wraps the body in a
``ClosingIterator`` of a generator: about 10 us a response.

:class:`WholeResponse` is a werkzeug ``Response`` in every way, but

* built from a body and a status alone, it keeps its two headers
  (``Content-Type``, ``Content-Length``) as a plain list and makes the
  ``Headers`` object only if something reads or changes ``headers``;
* called with a body of bytes in memory with its length and nothing to
  rewrite in its headers, it hands status, headers and body to
  ``start_response`` directly; anything else goes through werkzeug's path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import Headers
from werkzeug.utils import get_content_type
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["WholeResponse"]

#: Headers werkzeug rewrites on the way out (IRIs to URIs): left to its path.
_REWRITTEN = frozenset(("location", "content-location"))

_content_types: dict[str | None, str | None] = {}

#: ``(status line, code)`` per status code, as werkzeug's ``status`` setter
#: computes them (once per code, by that setter).
_status_lines: dict[int, tuple[str, int]] = {}


def _default_content_type(mimetype: str | None) -> str | None:
    """The ``Content-Type`` werkzeug gives a response of ``mimetype`` (computed once)."""
    try:
        return _content_types[mimetype]
    except KeyError:
        found = _content_types[mimetype] = (
            get_content_type(mimetype, "utf-8") if mimetype is not None else None)
        return found


class WholeResponse(Response):
    """werkzeug's ``Response``, built and answered without werkzeug's copies when it can be.

    Built like a ``Response`` (same arguments); with neither ``headers`` nor
    a type given, its ``Content-Type`` is the default one. Subclasses are
    built the werkzeug way (they may override ``set_data`` and the like).
    """

    #: the headers while no one asked for a ``Headers`` (see ``headers``)
    _header_list: list[tuple[str, str]] | None = None
    _headers: Headers | None = None

    def __init__(self, response: Any = None, status: int | str | None = None,
                 headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                 mimetype: str | None = None, content_type: str | None = None,
                 direct_passthrough: bool = False) -> None:
        if headers is None and mimetype is None and content_type is None:
            body_type = type(response)
            if ((body_type is bytes or body_type is str) and type(self) is WholeResponse
                    and (status is None or type(status) is int)):
                # What werkzeug's __init__ sets, set directly. _status,
                # _status_code and _on_close are werkzeug's private names:
                # test_response.py compares every public view of such a
                # response with werkzeug's, so a werkzeug that renames them
                # fails there loudly.
                body = response if body_type is bytes else response.encode()
                code = 200 if status is None else status
                try:
                    self._status, self._status_code = _status_lines[code]
                except KeyError:
                    self.status = code  # werkzeug's setter checks and formats it
                    if len(_status_lines) < 1000:  # codes come from code; stay bounded
                        _status_lines[code] = self._status, self._status_code
                length = ("Content-Length", str(len(body)))
                mimetype = self.default_mimetype
                content_type = _content_types.get(mimetype) or _default_content_type(mimetype)
                self._header_list = (
                    [("Content-Type", content_type), length] if content_type is not None
                    else [length])
                self.direct_passthrough = direct_passthrough
                self._on_close = []
                self.response = [body]
                return
            content_type = _default_content_type(self.default_mimetype)
        super().__init__(response, status=status, headers=headers, mimetype=mimetype,
                         content_type=content_type, direct_passthrough=direct_passthrough)

    @property
    def headers(self) -> Headers:
        """The response headers (a werkzeug ``Headers``, made on first use)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self._header_list)
            self._header_list = None
        return headers

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value
        self._header_list = None

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        """Answer as werkzeug does; in one step for a body of bytes with its length."""
        body = self.response
        if (type(body) is list and len(body) == 1 and type(body[0]) is bytes
                and not self._on_close and environ["REQUEST_METHOD"] != "HEAD"):
            headers = self._header_list
            if headers is not None:
                # Built by __init__ above, headers never made into Headers
                # (so never changed): our own two (a copy: start_response
                # may add to its list). The status is werkzeug's, as set by
                # __init__ or its setter since.
                status = self._status_code
                if status >= 200 and status != 204 and status != 304:
                    start_response(self._status, list(headers))
                    return body
                return super().__call__(environ, start_response)
            status = self.status_code
            if status >= 200 and status != 204 and status != 304:
                headers = self.headers.to_wsgi_list()
                has_length = False
                for name, _ in headers:
                    lowered = name.lower()
                    if lowered in _REWRITTEN:
                        break
                    if lowered == "content-length":
                        has_length = True
                else:
                    if has_length:
                        # What werkzeug's path would send: these headers (no
                        # rewriting needed) and this body, nothing to close.
                        start_response(self.status, headers)
                        return body
        return super().__call__(environ, start_response)
