"""Python's own HTTP clients through ``wasi:http``.

A check has no sockets: the host makes its HTTP requests, under the check's
outbound policy and the run's budget. Importing ``vantage_check`` imports
this module, which makes the usual clients go through the
``wasi:http/outgoing-handler`` import the host implements:

- ``http.client.HTTPConnection`` and ``HTTPSConnection`` are replaced by
  subclasses whose "socket" collects the request http.client writes and, once
  it is complete, sends it with ``wasi:http``; the answer is read by the
  standard ``http.client.HTTPResponse`` (``status``, ``reason``,
  ``getheader(s)``, ``read``...). ``request``, ``putrequest``/``putheader``/
  ``endheaders``/``send`` and ``getresponse`` work as usual;
- so ``urllib.request.urlopen`` works, HTTPS included (``urllib.request``'s
  ``HTTPSHandler`` is defined, though there is no ``ssl`` module);
- ``requests`` (when the check vendors it): its ``HTTPAdapter.send`` is
  replaced, when ``requests`` is imported, by one that sends through
  ``wasi:http`` and builds the usual ``requests.Response``.

Failures are ``OSError`` subclasses (``WasiHttpError``) naming the
``wasi:http`` error-code: urllib raises them as ``urllib.error.URLError``
(``e.reason``), requests as ``requests.ConnectionError``, ``ConnectTimeout``,
``ReadTimeout`` or ``SSLError``.

What ``wasi:http`` cannot express: the ``Host`` header and other
hop-by-hop headers are the host's (the request goes to the URL's
authority); TLS is always verified with the host's roots and no client
certificate (``verify=False``, ``cert=`` and SSL contexts have no effect, or
are refused); proxies are not used. ``vantage_check.http.fetch`` is the
richer API: TLS options, per-phase timings on the response.

A check's Python has no file system at run time: only modules imported
while the component is built are there, so this module imports what these
clients import lazily.
"""

import datetime as _datetime
import http as _http
import http.client as _hc
import io as _io
import re as _re
import socket as _socket
import sys as _sys
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit as _urlsplit

# Imported lazily by http.client, urllib.request and requests at run time,
# when the standard library is no longer there to import from.
import email.utils  # noqa: F401
import encodings.idna  # noqa: F401
import encodings.latin_1  # noqa: F401
import encodings.ascii  # noqa: F401
import http.cookiejar  # noqa: F401

from componentize_py_types import Err as _Err, Ok as _Ok
from wit_world.imports import monotonic_clock as _clock
from wit_world.imports import outgoing_handler as _handler
from wit_world.imports import poll as _poll
from wit_world.imports import streams as _streams
from wit_world.imports import types as _t

__all__ = [
    "WasiHttpError", "RequestDenied", "NameResolutionError", "ConnectionRefused",
    "ConnectionTerminated", "Timeout", "TlsError", "WasiResponse", "send",
    "HTTPConnection", "HTTPSConnection",
]

_READ_SIZE = 64 * 1024
# wasi:http refuses these (the host sets Host from the URL's authority and
# frames the body itself); http.client, urllib and requests set some of them.
_FORBIDDEN = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings", "te",
})


# --------------------------------------------------------------------------
# Errors


class WasiHttpError(OSError):
    """An HTTP exchange that ended without a response. ``code`` is the
    ``wasi:http`` error-code (``HTTP-request-denied``, ``DNS-error``,
    ``connection-refused``...), or ``timeout`` for a deadline the check set."""

    def __init__(self, message: str, code: str = "internal-error"):
        super().__init__(message)
        self.code = code


class RequestDenied(WasiHttpError, PermissionError):
    """The host refused the request: not in the check's outbound allow list."""


class NameResolutionError(WasiHttpError, _socket.gaierror):
    """The host name did not resolve."""


class ConnectionRefused(WasiHttpError, ConnectionRefusedError):
    """Nothing listens there."""


class ConnectionTerminated(WasiHttpError, ConnectionResetError):
    """The connection ended before the response did."""


class Timeout(WasiHttpError, TimeoutError):
    """A timeout: connecting, or waiting for the response or its body."""


class TlsError(WasiHttpError):
    """The TLS handshake failed (``wasi:http`` always verifies certificates)."""


_KINDS = {
    "HTTP-request-denied": (RequestDenied, "refused by the host: not in this check's outbound allow list"),
    "DNS-error": (NameResolutionError, "the host name did not resolve"),
    "DNS-timeout": (Timeout, "timed out resolving the host name"),
    "destination-not-found": (NameResolutionError, "the host name did not resolve"),
    "destination-unavailable": (ConnectionRefused, "the destination is unavailable"),
    "destination-IP-prohibited": (RequestDenied, "the destination address is prohibited"),
    "destination-IP-unroutable": (ConnectionRefused, "the destination address is unroutable"),
    "connection-refused": (ConnectionRefused, "connection refused"),
    "connection-terminated": (ConnectionTerminated, "the connection was closed before the response"),
    "connection-timeout": (Timeout, "timed out connecting"),
    "connection-read-timeout": (Timeout, "timed out reading the response"),
    "connection-write-timeout": (Timeout, "timed out sending the request"),
    "connection-limit-reached": (WasiHttpError, "the run's connection budget is spent"),
    "TLS-protocol-error": (TlsError, "TLS handshake failed"),
    "TLS-certificate-error": (TlsError, "the server's TLS certificate was not accepted (wasi:http "
                              "always verifies it; vantage_check.http.fetch takes TLS options)"),
    "TLS-alert-received": (TlsError, "the server sent a TLS alert"),
    "HTTP-response-incomplete": (ConnectionTerminated, "the response was incomplete"),
    "HTTP-response-body-size": (WasiHttpError, "the response body is larger than the run's budget allows"),
    "HTTP-response-timeout": (Timeout, "timed out waiting for the response"),
}


def _code_name(code: Any) -> str:
    """The WIT name of an ``error-code`` case: ``ErrorCode_HttpRequestDenied``
    → ``HTTP-request-denied``."""
    name = type(code).__name__.split("_", 1)[-1]
    words = [w.lower() for w in _re.findall(r"[A-Z][a-z0-9]*", name)]
    words = [w.upper() if w in ("dns", "tls", "http", "ip") else w for w in words]
    return "-".join(words)


def _payload(code: Any) -> str:
    value = getattr(code, "value", None)
    if value is None:
        return ""
    if isinstance(value, str):
        return f": {value}"
    if isinstance(value, int):
        return f" {value}"
    parts = [f"{k.replace('_', '-')} {v}" for k, v in vars(value).items() if v is not None] \
        if hasattr(value, "__dict__") else [str(value)]
    return f" ({', '.join(parts)})" if parts else ""


def _error(code: Any, method: str, url: str) -> WasiHttpError:
    """The exception for ``wasi:http`` error-code ``code``."""
    name = _code_name(code)
    kind, what = _KINDS.get(name, (WasiHttpError, name.replace("-", " ")))
    return kind(f"{method} {url}: {what} (wasi:http error-code {name}{_payload(code)})", name)


def _timeout(method: str, url: str, what: str) -> Timeout:
    return Timeout(f"{method} {url}: timed out {what} (the check's timeout)", "timeout")


# --------------------------------------------------------------------------
# The client


class WasiResponse:
    """One ``wasi:http`` exchange's answer: ``status``, ``headers`` (names in
    lower case, values as bytes), the whole ``body``, ``url`` and ``elapsed``
    (seconds, measured in the check)."""

    def __init__(self, status: int, headers: List[Tuple[str, bytes]], body: bytes, url: str, elapsed: float):
        self.status, self.headers, self.body, self.url, self.elapsed = status, headers, body, url, elapsed

    def __repr__(self) -> str:
        return f"<WasiResponse {self.status} {self.url} {len(self.body)} bytes in {self.elapsed * 1000:.1f} ms>"


_METHODS = {
    "GET": _t.Method_Get, "HEAD": _t.Method_Head, "POST": _t.Method_Post, "PUT": _t.Method_Put,
    "DELETE": _t.Method_Delete, "CONNECT": _t.Method_Connect, "OPTIONS": _t.Method_Options,
    "TRACE": _t.Method_Trace, "PATCH": _t.Method_Patch,
}


def _now() -> int:
    return _clock.now()


def _wait(pollable: Any, deadline: Optional[int]) -> bool:
    """Wait until ``pollable`` is ready (``True``) or the monotonic
    ``deadline`` (ns) passes (``False``)."""
    if deadline is None:
        pollable.block()
        return True
    remaining = deadline - _now()
    if remaining <= 0:
        return pollable.ready()
    with _clock.subscribe_duration(remaining) as timer:
        ready = _poll.poll([pollable, timer])
    return 0 in ready


def _seconds_to_ns(seconds: Optional[float]) -> Optional[int]:
    if seconds is None:
        return None
    return max(0, int(seconds * 1_000_000_000))


def _safe_url(scheme: str, authority: str, path: str) -> str:
    """The URL for messages, without user information."""
    return f"{scheme}://{authority.rpartition('@')[2]}{path}"


def send(method: str, url: str, headers: Sequence[Tuple[str, Any]] = (), body: Optional[bytes] = None,
         timeout: Optional[float] = None, connect_timeout: Optional[float] = None) -> WasiResponse:
    """Send one request with ``wasi:http`` and read the whole answer.

    ``headers`` are ``(name, value)`` pairs (str or bytes values); the
    hop-by-hop ones ``wasi:http`` does not take (``Host``, ``Connection``,
    ``Transfer-Encoding``...) are left out. ``timeout`` (seconds) bounds the
    wait for the response and each wait for its body; ``connect_timeout``
    the connection (default: ``timeout``). No answer: a ``WasiHttpError``.
    A redirect is an answer (the caller follows it, or not).
    """
    method = method.upper()
    parts = _urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _hc.InvalidURL(f"{url!r}: only http and https URLs go through wasi:http")
    authority = parts.netloc.rpartition("@")[2]
    if not authority:
        raise _hc.InvalidURL(f"{url!r}: no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown = _safe_url(scheme, authority, path)

    fields = _t.Fields()
    for name, value in headers:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if name.lower() in _FORBIDDEN:
            continue
        if not isinstance(value, bytes):
            value = str(value).encode("latin-1")
        try:
            fields.append(name, value)
        except _Err as e:
            if isinstance(e.value, _t.HeaderError_Forbidden):
                continue
            raise ValueError(f"invalid HTTP header {name!r}: {value!r}") from None

    request = _t.OutgoingRequest(fields)
    try:
        request.set_method(_METHODS[method]() if method in _METHODS else _t.Method_Other(method))
        request.set_scheme(_t.Scheme_Https() if scheme == "https" else _t.Scheme_Http())
        request.set_authority(authority)
        request.set_path_with_query(path)
    except _Err:
        request.__exit__(None, None, None)
        raise _hc.InvalidURL(f"{shown!r} is not a valid request target") from None

    options = _t.RequestOptions()
    for setter, seconds in (
        (options.set_connect_timeout, connect_timeout if connect_timeout is not None else timeout),
        (options.set_first_byte_timeout, timeout),
        (options.set_between_bytes_timeout, timeout),
    ):
        if seconds is not None:
            try:
                setter(_seconds_to_ns(seconds))
            except _Err:
                pass

    started = _now()
    wait_ns = None
    if timeout is not None or connect_timeout is not None:
        wait_ns = _seconds_to_ns((timeout or 0) + (connect_timeout or 0))
    deadline = None if wait_ns is None else started + wait_ns

    outgoing_body = request.body() if body is not None else None
    try:
        future = _handler.handle(request, options)
    except _Err as e:
        if outgoing_body is not None:
            outgoing_body.__exit__(None, None, None)
        raise _error(e.value, method, shown) from None

    try:
        if outgoing_body is not None:
            _write_body(outgoing_body, body, deadline, method, shown)
        with future.subscribe() as ready:
            if not _wait(ready, deadline):
                raise _timeout(method, shown, "waiting for the response")
        result = future.get()
        if not isinstance(result, _Ok) or result is None:
            raise WasiHttpError(f"{method} {shown}: the response was already taken", "internal-error")
        if isinstance(result.value, _Err):
            raise _error(result.value.value, method, shown)
        response = result.value.value
        try:
            status = response.status()
            with response.headers() as fields:
                entries = [(k, bytes(v)) for k, v in fields.entries()]
            between = _seconds_to_ns(timeout)
            data = _read_body(response, between, method, shown)
        finally:
            response.__exit__(None, None, None)
    finally:
        future.__exit__(None, None, None)
    elapsed = (_now() - started) / 1e9
    return WasiResponse(status, entries, data, shown, elapsed)


def _write_body(outgoing_body: Any, body: bytes, deadline: Optional[int], method: str, url: str) -> None:
    """Write ``body`` to the request's body stream and finish it. A write the
    host refuses stops writing: the response's future says why."""
    view = memoryview(body)
    stream = outgoing_body.write()
    try:
        offset = 0
        while offset < len(view):
            try:
                room = stream.check_write()
                if room == 0:
                    with stream.subscribe() as ready:
                        if not _wait(ready, deadline):
                            raise _timeout(method, url, "sending the request body")
                    continue
                count = min(room, len(view) - offset, _READ_SIZE)
                stream.write(bytes(view[offset:offset + count]))
                offset += count
            except _Err:
                return
        try:
            stream.flush()
            with stream.subscribe() as ready:
                _wait(ready, deadline)
        except _Err:
            return
    finally:
        stream.__exit__(None, None, None)
        try:
            _t.OutgoingBody.finish(outgoing_body, None)
        except _Err:
            pass


def _read_body(response: Any, between: Optional[int], method: str, url: str) -> bytes:
    """The whole body of ``response``."""
    incoming = response.consume()
    chunks = []
    stream = incoming.stream()
    try:
        while True:
            try:
                chunk = stream.read(_READ_SIZE)
            except _Err as e:
                if isinstance(e.value, _streams.StreamError_Closed):
                    break
                failure = e.value.value
                try:
                    code = _t.http_error_code(failure)
                    detail = failure.to_debug_string() if code is None else ""
                finally:
                    failure.__exit__(None, None, None)
                if code is not None:
                    raise _error(code, method, url) from None
                raise ConnectionTerminated(
                    f"{method} {url}: reading the response body failed: {detail}", "stream-error") from None
            if chunk:
                chunks.append(chunk)
                continue
            with stream.subscribe() as ready:
                if not _wait(ready, None if between is None else _now() + between):
                    raise _timeout(method, url, "reading the response body")
    finally:
        stream.__exit__(None, None, None)
        _t.IncomingBody.finish(incoming).__exit__(None, None, None)
    return b"".join(chunks)


# --------------------------------------------------------------------------
# http.client


def _answer_bytes(answer: WasiResponse) -> bytes:
    """``answer`` as HTTP/1.1 bytes for ``http.client.HTTPResponse`` to read:
    the body as received, without transfer framing."""
    try:
        reason = _http.HTTPStatus(answer.status).phrase
    except ValueError:
        reason = ""
    lines = [b"HTTP/1.1 %d %s\r\n" % (answer.status, reason.encode("latin-1"))]
    for name, value in answer.headers:
        if name.lower() == "transfer-encoding":
            continue
        lines.append(name.encode("latin-1") + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines) + answer.body


def _dechunk(data: bytes) -> Optional[bytes]:
    """The body of a chunked request, or ``None`` while it is incomplete."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(data[pos:eol].split(b";", 1)[0].strip() or b"0", 16)
        pos = eol + 2
        if size == 0:
            if data[pos:pos + 2] == b"\r\n" or data.find(b"\r\n\r\n", pos) >= 0:
                return bytes(out)
            return None
        if len(data) < pos + size + 2:
            return None
        out += data[pos:pos + size]
        pos += size + 2


class _Request:
    """A request being written by http.client, parsed as it arrives."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.head: Optional[Tuple[str, str, List[Tuple[str, bytes]]]] = None
        self.body_at = 0

    def complete_body(self) -> Optional[bytes]:
        """The body once the request is complete, else ``None``."""
        if self.head is None:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                return None
            self.head = self._parse_head(bytes(self.data[:end]))
            self.body_at = end + 4
        headers = {name.lower(): value for name, value in self.head[2]}
        body = bytes(self.data[self.body_at:])
        if b"chunked" in headers.get("transfer-encoding", b"").lower():
            if not body.endswith(b"\r\n\r\n"):
                return None
            return _dechunk(body)
        if "content-length" in headers:
            length = int(headers["content-length"])
            return body[:length] if len(body) >= length else None
        return body

    @staticmethod
    def _parse_head(head: bytes) -> Tuple[str, str, List[Tuple[str, bytes]]]:
        lines = head.split(b"\r\n")
        method, target = lines[0].decode("latin-1").split(" ")[:2]
        headers: List[Tuple[str, bytes]] = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and headers:
                # putheader(name, a, b) folds the values over lines.
                name, value = headers[-1]
                headers[-1] = (name, value + b" " + line.strip())
            elif line:
                name, _, value = line.partition(b":")
                headers.append((name.strip().decode("latin-1"), value.strip()))
        return method, target, headers


class _WasiSocket:
    """What a ``HTTPConnection`` writes its request to and reads its response
    from: the request is sent with ``wasi:http`` as soon as it is complete
    (so a failure surfaces from ``request()``/``endheaders()``, where urllib
    turns it into ``URLError``), the answer served by ``makefile``."""

    def __init__(self, connection: "HTTPConnection"):
        self._connection = connection
        self._request = _Request()
        self._answer: Optional[WasiResponse] = None
        self.last: Optional[WasiResponse] = None

    def sendall(self, data: Any) -> None:
        if self._answer is not None:
            raise _hc.CannotSendRequest("the request was sent; read its response first")
        self._request.data += bytes(data)
        body = self._request.complete_body()
        if body is not None:
            self._exchange(body)

    def send(self, data: Any) -> int:
        self.sendall(data)
        return len(data)

    def _exchange(self, body: bytes) -> None:
        request, self._request = self._request, _Request()
        method, target, headers = request.head
        c = self._connection
        if target.startswith(("http://", "https://")):
            url = target
        else:
            host = f"[{c.host}]" if ":" in c.host else c.host
            port = "" if c.port == c.default_port else f":{c.port}"
            url = f"{c._scheme}://{host}{port}{target}"
        timeout = c.timeout
        if timeout is _socket._GLOBAL_DEFAULT_TIMEOUT:
            timeout = _socket.getdefaulttimeout()
        has_body = body or any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers)
        self._answer = send(method, url, headers, body if has_body else None, timeout=timeout)

    def makefile(self, mode: str = "rb", buffering: Any = None) -> _io.BytesIO:
        if self._answer is None:
            if self._request.head is None:
                raise _hc.ResponseNotReady("no complete request was sent")
            body = self._request.complete_body()
            self._exchange(body if body is not None else bytes(self._request.data[self._request.body_at:]))
        self.last, self._answer = self._answer, None
        return _io.BytesIO(_answer_bytes(self.last))

    def close(self) -> None:
        self._request = _Request()
        self._answer = None

    # What code that reaches for the socket may call.
    def settimeout(self, timeout: Optional[float]) -> None:
        self._connection.timeout = timeout

    def gettimeout(self) -> Optional[float]:
        return self._connection.timeout

    def setsockopt(self, *args: Any) -> None:
        pass

    def shutdown(self, how: int) -> None:
        self.close()

    def fileno(self) -> int:
        return -1


class HTTPConnection(_hc.HTTPConnection):
    """``http.client.HTTPConnection`` over ``wasi:http``: the request is sent
    when complete, the response read with ``getresponse()`` as usual (it
    carries ``wasi_response``: the exchange's status, headers, whole body and
    ``elapsed`` seconds). Proxies (``set_tunnel``) are not supported."""

    _scheme = "http"

    def connect(self) -> None:
        if self._tunnel_host:
            raise OSError("HTTP proxies (CONNECT tunnels) are not supported through wasi:http")
        self.sock = _WasiSocket(self)

    def getresponse(self) -> _hc.HTTPResponse:
        sock = self.sock
        response = super().getresponse()
        if isinstance(sock, _WasiSocket) and sock.last is not None:
            response.wasi_response = sock.last
        return response


class HTTPSConnection(HTTPConnection):
    """``http.client.HTTPSConnection`` over ``wasi:http``: TLS is the host's,
    always verified; ``context`` is accepted and has no effect."""

    default_port = _hc.HTTPS_PORT
    _scheme = "https"

    def __init__(self, host: str, port: Optional[int] = None, *, timeout: Any = _socket._GLOBAL_DEFAULT_TIMEOUT,
                 source_address: Any = None, context: Any = None, blocksize: int = 8192, **_ignored: Any):
        super().__init__(host, port, timeout, source_address, blocksize=blocksize)
        self._context = context


def _http_client_response(answer: WasiResponse, method: str) -> _hc.HTTPResponse:
    """``answer`` read by the standard ``http.client.HTTPResponse``."""

    class _Source:
        def makefile(self, mode: str = "rb", buffering: Any = None) -> _io.BytesIO:
            return _io.BytesIO(_answer_bytes(answer))

    response = _hc.HTTPResponse(_Source(), method=method, url=answer.url)
    response.begin()
    response.wasi_response = answer
    return response


def _install_http_client() -> None:
    if _hc.HTTPConnection is HTTPConnection:
        return
    _hc.HTTPConnection = HTTPConnection
    _hc.HTTPSConnection = HTTPSConnection
    if not hasattr(_hc, "ssl"):
        # urllib.request's HTTPSHandler asks for an SSL context; there is no
        # ssl module, and the host's TLS needs none.
        _hc._create_https_context = lambda http_version: None
    if "HTTPSConnection" not in _hc.__all__:
        _hc.__all__.append("HTTPSConnection")
    # urllib.request defines HTTPSHandler only if http.client had
    # HTTPSConnection when it was imported.
    urllib_request = _sys.modules.get("urllib.request")
    if urllib_request is not None and not hasattr(urllib_request, "HTTPSHandler"):
        import importlib
        importlib.reload(urllib_request)
    import urllib.request  # noqa: F401
    import urllib.error  # noqa: F401
    import urllib.response  # noqa: F401


# --------------------------------------------------------------------------
# requests


def _split_timeout(timeout: Any) -> Tuple[Optional[float], Optional[float]]:
    """requests' ``timeout`` (a number, ``(connect, read)`` or a urllib3
    ``Timeout``) as ``(connect, read)`` seconds."""
    def number(value: Any) -> Optional[float]:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    if isinstance(timeout, tuple):
        connect, read = timeout
        return number(connect), number(read)
    if hasattr(timeout, "connect_timeout"):
        total = number(getattr(timeout, "total", None))
        connect = number(getattr(timeout, "_connect", None))
        read = number(getattr(timeout, "_read", None))
        return (connect if connect is not None else total), (read if read is not None else total)
    return number(timeout), number(timeout)


def _requests_body(body: Any) -> Optional[bytes]:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in body)


def _patch_requests(adapters: Any) -> None:
    """Make ``requests.adapters.HTTPAdapter`` send through ``wasi:http``."""
    adapter_class = adapters.HTTPAdapter
    if getattr(adapter_class.send, "_vantage_wasi_http", False):
        return
    import requests.exceptions as rex
    from urllib3._collections import HTTPHeaderDict
    from urllib3.response import HTTPResponse as Urllib3Response
    try:  # what requests imports when it looks for a .netrc
        import netrc  # noqa: F401
    except ImportError:
        pass

    def adapter_send(self: Any, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> Any:
        """Send ``request`` with ``wasi:http`` (vantage_check.stdlib_http)."""
        if cert:
            raise rex.SSLError("client certificates are not supported through wasi:http "
                               "(vantage_check.http.fetch does not take them either)", request=request)
        if proxies and adapters.select_proxy(request.url, proxies):
            raise rex.ProxyError("proxies are not supported through wasi:http", request=request)
        self.add_headers(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        connect, read = _split_timeout(timeout)
        url = request.url.decode("utf-8") if isinstance(request.url, bytes) else request.url
        try:
            answer = send(request.method, url, list(request.headers.items()),
                          _requests_body(request.body), timeout=read, connect_timeout=connect)
        except Timeout as e:
            connecting = e.code in ("connection-timeout", "DNS-timeout")
            raise (rex.ConnectTimeout if connecting else rex.ReadTimeout)(e, request=request) from None
        except TlsError as e:
            raise rex.SSLError(e, request=request) from None
        except OSError as e:
            raise rex.ConnectionError(e, request=request) from None
        original = _http_client_response(answer, request.method)
        kwargs = dict(
            body=original, headers=HTTPHeaderDict(original.msg.items()), status=original.status,
            version=original.version, reason=original.reason, preload_content=False,
            decode_content=False, original_response=original, enforce_content_length=True,
            request_method=request.method, request_url=url,
        )
        try:
            raw = Urllib3Response(version_string="HTTP/1.1", **kwargs)
        except TypeError:  # urllib3 1.x
            raw = Urllib3Response(**kwargs)
        response = self.build_response(request, raw)
        response.wasi_response = answer
        return response

    adapter_send.__name__ = adapter_send.__qualname__ = "send"
    adapter_send._vantage_wasi_http = True
    adapter_class.send = adapter_send


class _RequestsHook:
    """Patches ``requests`` when it is imported (not before: a check that
    does not use it does not carry it)."""

    _busy = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "requests.adapters" or self._busy:
            return None
        import importlib.util
        self._busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader:
    def __init__(self, loader: Any):
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _patch_requests(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _install_requests() -> None:
    adapters = _sys.modules.get("requests.adapters")
    if adapters is not None:
        _patch_requests(adapters)
    elif not any(isinstance(f, _RequestsHook) for f in _sys.meta_path):
        _sys.meta_path.insert(0, _RequestsHook())


def install() -> None:
    """Route ``http.client``, ``urllib.request`` and ``requests`` through
    ``wasi:http`` (done when ``vantage_check`` is imported)."""
    _install_http_client()
    _install_requests()


install()
