"""The werkzeug ``Request`` of a routed request, built for what routing reads.

werkzeug's ``Request.__init__`` works out every basic attribute from the
WSGI environ at once (scheme, server address, root path, query string,
headers object, client address): about 2.7 us, most of it for attributes a
handler seldom reads. :class:`RoutedRequest` is werkzeug's ``Request``
with ``method`` and ``path`` (which routing needs) computed at once and the
others computed the same way from the environ on first read, then kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar, overload

from werkzeug.datastructures import EnvironHeaders
from werkzeug.utils import cached_property
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_input_stream

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["RoutedRequest", "wsgi_decoded"]

_T = TypeVar("_T")


def wsgi_decoded(value: str) -> str:
    """A WSGI path string (bytes as latin-1) as the UTF-8 text it holds, as werkzeug decodes it."""
    return value.encode("latin1").decode(errors="replace")


def _server_of(environ: WSGIEnvironment) -> tuple[str, int | None] | None:
    """``(host, port)`` the server listens on, ``(path, None)`` for a unix socket."""
    name = environ.get("SERVER_NAME")
    if name is None:
        return None
    try:
        port: int | None = int(environ.get("SERVER_PORT"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        port = None
    return name, port


#: Methods already in upper case (what werkzeug's ``method`` makes of any).
_UPPER_CASE_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"))

#: ``path`` per raw ``PATH_INFO`` (decoding is string work done per request
#: otherwise). Bounded: a client requesting endless distinct URLs only
#: restarts it.
_paths: dict[str, str] = {}
_PATHS_KEPT = 1024


def _path_of(raw: str) -> str:
    """werkzeug's ``path`` for ``PATH_INFO`` ``raw``, remembered."""
    path = "/" + wsgi_decoded(raw).lstrip("/")
    if len(_paths) >= _PATHS_KEPT:
        _paths.clear()
    _paths[raw] = path
    return path


class _FromEnviron(Generic[_T]):
    """An attribute computed from the request's environ on first read.

    Only ``__get__``: once computed (or assigned) the value is the
    instance's own attribute, read without calling anything.
    """

    def __init__(self, compute: Callable[[WSGIEnvironment], _T]) -> None:
        self.compute = compute
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _FromEnviron[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance.environ)  # type: ignore[attr-defined]
        return value


class RoutedRequest(Request):
    """werkzeug's ``Request``, its less used basic attributes read from the environ on first use.

    One difference follows: if service code changes ``request.environ``
    (``QUERY_STRING``, ``REMOTE_ADDR``...) before it first reads ``args``,
    ``url`` or ``remote_addr``, it sees its change, where werkzeug's own
    ``Request`` kept what the environ held when the request was made. A
    WSGI middleware's changes, made before the request exists, are seen
    by both alike.
    """

    scheme = _FromEnviron(lambda environ: environ.get("wsgi.url_scheme", "http"))
    server = _FromEnviron(_server_of)
    root_path = _FromEnviron(
        lambda environ: wsgi_decoded(environ.get("SCRIPT_NAME") or "").rstrip("/"))
    query_string = _FromEnviron(lambda environ: environ.get("QUERY_STRING", "").encode("latin1"))
    headers = _FromEnviron(EnvironHeaders)
    remote_addr = _FromEnviron(lambda environ: environ.get("REMOTE_ADDR"))

    def __init__(self, environ: WSGIEnvironment, populate_request: bool = True,
                 shallow: bool = False) -> None:
        # what werkzeug's __init__ sets, less the attributes above
        method = environ.get("REQUEST_METHOD", "GET")
        self.method = method if method in _UPPER_CASE_METHODS else method.upper()
        raw_path = environ.get("PATH_INFO") or ""
        self.path = _paths.get(raw_path) or _path_of(raw_path)
        self.environ = environ
        self.shallow = shallow
        if populate_request and not shallow:
            environ["werkzeug.request"] = self

    @cached_property
    def stream(self) -> IO[bytes]:
        """The body stream, as werkzeug's ``Request.stream`` gives it.

        A server that ends the input itself (``wsgi.input_terminated``, as
        nameko_like's engine does) with no ``max_content_length`` set on the
        request class: werkzeug hands ``wsgi.input`` over unwrapped, after
        parsing ``Content-Length`` for nothing; so does this, without that.
        """
        environ = self.environ
        if self.shallow:
            raise RuntimeError("this request was created with shallow=True: "
                               "reading its input stream is disabled")
        max_length = self.max_content_length
        if max_length is None and "wsgi.input_terminated" in environ:
            stream: IO[bytes] = environ["wsgi.input"]
            return stream
        return get_input_stream(environ, max_content_length=max_length)
