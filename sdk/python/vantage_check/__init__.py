"""Vantage checks in Python.

A check is a WebAssembly component built with componentize-py against the
``vantage:check@0.2.0`` world (``wit/``, shipped beside this package). This
package wraps the generated bindings with the same names as the Rust SDK::

    from vantage_check import Check, Key, Outcome, TARGET, export, http

    class Healthz(Check):
        name = "healthz"
        description = "GET each target; pass on 2xx within the latency budget."
        outbound = [TARGET]
        config = [Key("latency.max", "Slowest acceptable response.", type="duration", default="1s")]

        def run(self, ctx):
            out = Outcome()
            for url in ctx.require_targets():
                response = http.get(url)
                out.expect(response).status_matches("2xx").latency_below(ctx.get_duration("latency.max"))
                out.measure_response(response)
            return out

    WitWorld = export(Healthz)

Build it with ``componentize-py -d wit -w check componentize app -o check.wasm``
(``vantage new --lang python`` writes a ``build.sh`` that does).

Python's own HTTP clients work too, once ``vantage_check`` is imported
(``vantage_check.stdlib_http``): ``urllib.request.urlopen``,
``http.client.HTTPConnection``/``HTTPSConnection`` and, when the check
vendors it, ``requests`` (``pip install --target vendor ...``, then
``-p vendor`` for componentize-py). They go through ``wasi:http``: the host
makes the request under the same outbound policy and run budget as
``http.fetch``, and each exchange appears in the run's HTTP trace with its
timings. They follow redirects themselves, each hop checked by the policy.
No answer is an ``OSError`` naming the ``wasi:http`` error-code (urllib's
``URLError``, requests' ``ConnectionError``/``Timeout``/``SSLError``): a
host the check may not reach reads ``refused by the host: not in this
check's outbound allow list (wasi:http error-code HTTP-request-denied)``.
``out.expect(...)`` takes their responses. ``http.fetch`` remains the richer
API: TLS options (CA bundle, server name, ``insecure``), per-phase timings
on the response object, redirect and body-size limits; through ``wasi:http``
TLS is always verified and the ``Host`` header is the URL's.

Errors: a ``VantageError`` (``NetError``, ``SecretError``, ``ConfigError``)
that escapes ``run`` fails the run with its message, like the Rust SDK's
``Err``; any other exception is a bug in the check: its traceback goes to
stderr and the run ends with status ``error``, the traceback in the result.
"""

import json as _json
import re as _re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from componentize_py_types import Err as _Err
from wit_world.imports import common as _c
from wit_world.imports import http as _h
from wit_world.imports import log as _log
from wit_world.imports import secrets as _s
from wit_world.imports import tls as _tls

__version__ = "0.2.0"
#: The WIT world this SDK targets.
WIT_WORLD = "vantage:check/check@0.2.0"
#: The outbound pattern that stands for the operator's targets.
TARGET = "{target}"

__all__ = [
    "Check", "Context", "ConfigError", "Expect", "FetchError", "Key", "NetError",
    "Outcome", "Response", "SecretError", "TARGET", "Timings", "VantageError",
    "export", "http", "log", "secrets",
]


# --------------------------------------------------------------------------
# Errors


class VantageError(Exception):
    """An expected failure: escaping ``run``, it fails the run with its message."""


class ConfigError(VantageError):
    """A configuration value that is missing or cannot be read as its type."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


class SecretError(VantageError):
    """A secret the check may not read, or that could not be read."""


class NetError(VantageError):
    """Why a network call gave no answer: ``kind`` is ``denied``, ``dns``,
    ``connect``, ``tls``, ``timeout``, ``body-too-large``,
    ``too-many-redirects``, ``protocol``, ``limit-exceeded``,
    ``invalid-request`` or ``unsupported``; ``detail`` says more."""

    def __init__(self, kind: str, detail: Any):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class FetchError(NetError):
    """An HTTP exchange that ended without a complete response, with what was
    learned before it did: ``timings`` (phases measured) and ``response``
    (e.g. the status of a body that was too large), if any."""

    def __init__(self, kind: str, detail: Any, timings: "Timings", response: Optional["Response"]):
        super().__init__(kind, detail)
        self.timings = timings
        self.response = response


def _net_error(error: Any) -> Tuple[str, Any]:
    """``(kind, detail)`` of a WIT ``net-error`` case."""
    name = type(error).__name__.split("_", 1)[-1]
    kind = _re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    return kind, getattr(error, "value", "")


# --------------------------------------------------------------------------
# Configuration keys


_TYPES = {
    "text": _c.ValueType_Text,
    "number": _c.ValueType_Number,
    "boolean": _c.ValueType_Boolean,
    "duration": _c.ValueType_Duration,
    "regex": _c.ValueType_Regex,
    "url": _c.ValueType_Url,
    "host-port": _c.ValueType_HostPort,
    "status-range": _c.ValueType_StatusRange,
    "pem": _c.ValueType_Pem,
    "size": _c.ValueType_Size,
}


class Key:
    """One configuration key the check understands.

    ``type`` is one of ``text``, ``integer``, ``number``, ``boolean``,
    ``duration``, ``regex``, ``url``, ``host-port``, ``status-range``,
    ``pem``, ``size`` (or give ``choices``); the host refuses a value of
    another type when it loads the configuration. ``<name>`` in a key
    (``headers.<name>``) stands for any one segment. ``repeated`` keys take
    a list (``key = ["a", "b"]``). A key not declared fails the run before
    ``run`` is called, naming it.
    """

    def __init__(self, key: str, description: str, type: str = "text", default: Optional[str] = None,
                 required: bool = False, repeated: bool = False, sensitive: bool = False,
                 choices: Optional[Sequence[str]] = None, min: Optional[int] = None,
                 max: Optional[int] = None):
        if choices is None and type != "integer" and type not in _TYPES:
            raise ValueError(f"unknown key type {type!r} for {key!r}")
        self.key, self.description, self.type = key, description, type
        self.default, self.required, self.repeated = default, required, repeated
        self.sensitive, self.choices, self.min, self.max = sensitive, choices, min, max
        pattern = _re.escape(key)
        pattern = _re.sub(r"<[^>]*>", r"[^.]+", pattern.replace(r"\<", "<").replace(r"\>", ">"))
        self._pattern = _re.compile(pattern + (r"(\.\d+)?" if repeated else "") + r"\Z")

    def matches(self, name: str) -> bool:
        """Whether the configured key ``name`` is this key."""
        return self._pattern.match(name) is not None

    def to_wit(self) -> Any:
        if self.choices is not None:
            value_type = _c.ValueType_Choice(list(self.choices))
        elif self.type == "integer":
            value_type = _c.ValueType_Integer((self.min, self.max))
        else:
            value_type = _TYPES[self.type]()
        return _c.ConfigKey(self.key, self.description, value_type, self.repeated,
                            self.default, self.required, self.sensitive)


# --------------------------------------------------------------------------
# The run's context


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = _re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """``"250ms"``, ``"5s"``, ``"1m30s"`` → seconds."""
    rest = text.strip()
    if not rest or _DURATION_PART.sub("", rest).strip():
        raise ValueError(f"not a duration: {text!r} (write e.g. 500ms, 5s, 1m)")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(rest))


class Context:
    """What the host tells a run: the targets, the configuration (dotted keys,
    string values, defaults of declared keys filled in), where and why it runs."""

    def __init__(self, raw: Any, keys: Sequence[Key] = ()):
        self.check_name: str = raw.check_name
        self.targets: List[str] = list(raw.targets)
        self.location: str = raw.location
        self.mode: str = "restore" if raw.mode == _c.Mode.RESTORE else "edge"
        self.timeout: float = raw.timeout_ms / 1000.0
        self.run_id: str = raw.run_id
        self.config: Dict[str, str] = {}
        for key in keys:
            if key.default is not None:
                self.config[key.key] = key.default
        for k, v in raw.config:
            self.config[k] = v
        self._raw = raw

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``key`` as written, or ``default``."""
        return self.config.get(key, default)

    def require(self, key: str) -> str:
        """The value of ``key``; ``ConfigError`` when it is not set."""
        value = self.config.get(key)
        if value is None:
            raise ConfigError(key, "missing: set it in the check's config")
        return value

    def _typed(self, key: str, default: Any, parse, what: str) -> Any:
        value = self.config.get(key)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            raise ConfigError(key, f"{value!r} is not {what}") from None

    def get_int(self, key: str, default: Optional[int] = None) -> Optional[int]:
        """``key`` as an integer."""
        return self._typed(key, default, int, "an integer")

    def get_float(self, key: str, default: Optional[float] = None) -> Optional[float]:
        """``key`` as a number."""
        return self._typed(key, default, float, "a number")

    def get_bool(self, key: str, default: Optional[bool] = None) -> Optional[bool]:
        """``key`` as a boolean (``true``/``false``)."""
        def parse(v: str) -> bool:
            if v.lower() in ("true", "false"):
                return v.lower() == "true"
            raise ValueError(v)
        return self._typed(key, default, parse, "true or false")

    def get_duration(self, key: str, default: Optional[float] = None) -> Optional[float]:
        """``key`` as a duration, in seconds (``"500ms"`` → ``0.5``)."""
        return self._typed(key, default, parse_duration, "a duration (e.g. 500ms, 5s)")

    def get_list(self, key: str) -> List[str]:
        """A repeated key's values (``key = ["a", "b"]`` arrives as ``key.0``,
        ``key.1``), or the single value."""
        items = sorted(
            ((int(k[len(key) + 1:]), v) for k, v in self.config.items()
             if k.startswith(key + ".") and k[len(key) + 1:].isdigit()),
        )
        if items:
            return [v for _, v in items]
        return [self.config[key]] if key in self.config else []

    def require_targets(self, why: str = "give this check a target") -> List[str]:
        """The targets; ``ConfigError`` when there are none."""
        if not self.targets:
            raise ConfigError("targets", f"none given: {why}")
        return self.targets


# --------------------------------------------------------------------------
# Host capabilities


class log:
    """Lines for the run's log (redacted by the host, bounded)."""

    @staticmethod
    def debug(message: str) -> None:
        _log.log(_log.Level.DEBUG, str(message))

    @staticmethod
    def info(message: str) -> None:
        _log.log(_log.Level.INFO, str(message))

    @staticmethod
    def warn(message: str) -> None:
        _log.log(_log.Level.WARN, str(message))

    @staticmethod
    def error(message: str) -> None:
        _log.log(_log.Level.ERROR, str(message))


class secrets:
    """Secrets the operator granted the check (``[check.secrets]``)."""

    @staticmethod
    def get(name: str) -> str:
        """The secret ``name``; ``SecretError`` when not granted or unavailable."""
        try:
            return _s.get(name)
        except _Err as e:
            case = e.value
            if isinstance(case, _s.SecretError_NotGranted):
                raise SecretError(f"secret {name!r} is not granted to this check") from None
            raise SecretError(f"secret {name!r} is unavailable: {getattr(case, 'value', '')}") from None


class Timings:
    """How long each phase of an exchange took, in milliseconds."""

    def __init__(self, t: Any):
        self.resolve_ms, self.connect_ms, self.tls_ms = t.resolve_ms, t.connect_ms, t.tls_ms
        self.processing_ms, self.transfer_ms, self.total_ms = t.processing_ms, t.transfer_ms, t.total_ms

    def __repr__(self) -> str:
        return (f"Timings(resolve={self.resolve_ms:.1f}ms, connect={self.connect_ms:.1f}ms, "
                f"tls={self.tls_ms:.1f}ms, processing={self.processing_ms:.1f}ms, "
                f"transfer={self.transfer_ms:.1f}ms, total={self.total_ms:.1f}ms)")


class Response:
    """An HTTP response: ``status``, ``headers`` (in order), ``body`` (bytes),
    ``text``, ``json()``, ``url`` (after redirects), ``timings``."""

    def __init__(self, r: Any):
        self.status: int = r.status
        self.headers: List[Tuple[str, str]] = list(r.headers)
        self.body: bytes = bytes(r.body)
        self.url: str = r.url
        self.version: str = {0: "1.0", 1: "1.1", 2: "2"}.get(r.version.value, "?")
        self.timings = Timings(r.timings)
        self.redirects = [(x.status, x.url, x.location) for x in r.redirects]
        self._raw = r

    @property
    def text(self) -> str:
        """The body, decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not JSON)."""
        return _json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive)."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def elapsed(self) -> float:
        """Total time, seconds."""
        return self.timings.total_ms / 1000.0

    @classmethod
    def of(cls, response: Any) -> "Response":
        """A ``Response`` for assertions from one of Python's own clients:
        a ``requests.Response``, or what ``urllib.request.urlopen`` returns
        (an ``http.client.HTTPResponse``; an ``urllib.error.HTTPError`` too).
        Only the total time is known (``timings.total_ms``): the per-phase
        timings of such exchanges are in the run's HTTP trace."""
        if isinstance(response, Response):
            return response
        self = cls.__new__(cls)
        if hasattr(response, "status_code") and hasattr(response, "content"):  # requests
            self.status = response.status_code
            self.headers = [(str(k), str(v)) for k, v in response.headers.items()]
            self.body = bytes(response.content)
            self.url = str(response.url)
            elapsed = response.elapsed.total_seconds() if response.elapsed else 0.0
        else:  # http.client.HTTPResponse, urllib's responses and HTTPError
            exchange = getattr(response, "wasi_response", None) or getattr(
                getattr(response, "fp", None), "wasi_response", None)
            self.status = getattr(response, "status", None) or response.code
            self.headers = [(str(k), str(v)) for k, v in response.headers.items()]
            self.body = exchange.body if exchange is not None else response.read()
            self.url = response.geturl() if hasattr(response, "geturl") else getattr(response, "url", "")
            elapsed = exchange.elapsed if exchange is not None else 0.0
        self.version = "1.1"
        self.timings = Timings(_Phases(elapsed * 1000.0))
        self.redirects = []
        self._raw = response
        return self


class _Phases:
    """Timings of an exchange measured in the check: the total only."""

    def __init__(self, total_ms: float):
        self.resolve_ms = self.connect_ms = self.tls_ms = 0.0
        self.processing_ms = self.transfer_ms = 0.0
        self.total_ms = total_ms


class http:
    """HTTP(S) through the host: the outbound policy applies, every phase is
    timed and recorded in the run's trace."""

    @staticmethod
    def fetch(method: str, url: str, headers: Optional[Dict[str, str]] = None,
              body: Optional[bytes] = None, timeout: Optional[float] = None,
              follow_redirects: bool = True, max_redirects: Optional[int] = None,
              max_body_bytes: Optional[int] = None, insecure: bool = False,
              ca_bundle: Optional[str] = None, server_name: Optional[str] = None,
              http2: bool = False) -> Response:
        """One exchange. A 4xx/5xx status is a response; no answer at all is a
        ``FetchError``."""
        tls = _tls.TlsOptions(server_name, ca_bundle, None, insecure, None, None)
        request = _h.Request(
            method, url, list((headers or {}).items()), body,
            None if timeout is None else int(timeout * 1000), follow_redirects,
            max_redirects, max_body_bytes, tls, None, None, http2,
            _h.IpPreference(None, True),
        )
        try:
            return Response(_h.fetch(request))
        except _Err as e:
            failed = e.value
            kind, detail = _net_error(failed.error)
            response = Response(failed.response) if failed.response is not None else None
            raise FetchError(kind, detail, Timings(failed.timings), response) from None

    @staticmethod
    def get(url: str, **kwargs: Any) -> Response:
        """``GET url`` (see ``fetch`` for the options)."""
        return http.fetch("GET", url, **kwargs)

    @staticmethod
    def post(url: str, body: Optional[bytes] = None, json: Any = None, **kwargs: Any) -> Response:
        """``POST url`` with ``body``, or ``json`` serialised (and its content type)."""
        if json is not None:
            body = _json.dumps(json).encode()
            kwargs["headers"] = {"content-type": "application/json", **(kwargs.get("headers") or {})}
        return http.fetch("POST", url, body=body, **kwargs)


# --------------------------------------------------------------------------
# The verdict


_PASS, _WARN, _FAIL = "pass", "warn", "fail"


class Outcome:
    """What a run found: assertions, measurements, labels; its status is the
    worst assertion (``fail`` > ``degraded``), its summary counts them unless
    set."""

    def __init__(self) -> None:
        self.assertions: List[Tuple[str, str, str, Optional[float]]] = []
        self.measurements: List[Tuple[str, float, str, List[Tuple[str, str]]]] = []
        self.labels: List[Tuple[str, str]] = []
        self._headline: Optional[str] = None
        self._summary: Optional[str] = None

    def assert_(self, name: str, ok: bool, detail: str = "", duration_ms: Optional[float] = None) -> "Outcome":
        """Record that the claim ``name`` held (or not)."""
        self.assertions.append((name, _PASS if ok else _FAIL, str(detail), duration_ms))
        return self

    check = assert_

    def assert_or_warn(self, name: str, ok: bool, detail: str = "") -> "Outcome":
        """A claim that only degrades the run when it does not hold."""
        self.assertions.append((name, _PASS if ok else _WARN, str(detail), None))
        return self

    def fail(self, reason: str) -> "Outcome":
        """Fail the run with ``reason``."""
        return self.assert_(reason, False, reason)

    def degrade(self, reason: str) -> "Outcome":
        """Degrade the run with ``reason``."""
        return self.assert_or_warn(reason, False, reason)

    def measure(self, name: str, value: float, unit: str = "", **labels: str) -> "Outcome":
        """A named number, exported as a metric (``cert_days_left``)."""
        self.measurements.append((name, float(value), unit, [(k, str(v)) for k, v in labels.items()]))
        return self

    def label(self, key: str, value: str) -> "Outcome":
        """An extra label on the result."""
        self.labels.append((key, str(value)))
        return self

    def headline(self, text: str) -> "Outcome":
        """What the summary starts with (``200 OK in 41 ms``)."""
        self._headline = text
        return self

    def set_summary(self, text: str) -> "Outcome":
        """The whole summary, replacing the generated one."""
        self._summary = text
        return self

    def expect(self, response: Any, name: Optional[str] = None) -> "Expect":
        """Assertions about ``response``, chained: an ``http.fetch`` response,
        or one from ``urllib.request``, ``http.client`` or ``requests``
        (``Response.of``). ``name`` prefixes the assertions' names
        (``"urllib: status is 2xx"``)."""
        return Expect(self, Response.of(response), name)

    def measure_response(self, response: Response) -> "Outcome":
        """The response's status and per-phase timings as measurements."""
        t = response.timings
        self.measure("http_status_code", response.status)
        for phase in ("resolve", "connect", "tls", "processing", "transfer", "total"):
            self.measure(f"http_{phase}_ms", getattr(t, f"{phase}_ms"), "ms")
        return self

    @property
    def status(self) -> str:
        """``pass``, ``degraded`` or ``fail``."""
        states = {state for _, state, _, _ in self.assertions}
        return "fail" if _FAIL in states else "degraded" if _WARN in states else "pass"

    def summary(self) -> str:
        if self._summary is not None:
            return self._summary
        failed = [name for name, state, _, _ in self.assertions if state == _FAIL]
        counted = f"{len(self.assertions) - len(failed)}/{len(self.assertions)} assertions passed"
        if failed:
            counted += f"; failed: {', '.join(failed[:3])}"
        return f"{self._headline}, {counted}" if self._headline else counted

    def to_wit(self) -> Any:
        states = {_PASS: _c.AssertionState.PASS, _WARN: _c.AssertionState.WARN, _FAIL: _c.AssertionState.FAIL}
        status = {"pass": _c.Status.PASS, "degraded": _c.Status.DEGRADED, "fail": _c.Status.FAIL}[self.status]
        return _c.CheckResult(
            status, self.summary(),
            [_c.Assertion(n, states[s], d, ms) for n, s, d, ms in self.assertions],
            [_c.Measurement(n, v, u, l) for n, v, u, l in self.measurements],
            list(self.labels),
        )


_STATUS_CLASS = _re.compile(r"^([1-5])xx$")


def _status_in(code: int, spec: str) -> bool:
    for part in str(spec).split(","):
        part = part.strip()
        m = _STATUS_CLASS.match(part)
        if m and code // 100 == int(m.group(1)):
            return True
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= code <= int(high):
                return True
        elif part.isdigit() and code == int(part):
            return True
    return False


def _pointer(doc: Any, pointer: str) -> Tuple[bool, Any]:
    """RFC 6901 pointer lookup: ``(found, value)``."""
    if pointer == "":
        return True, doc
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return False, None
    return True, doc


class Expect:
    """Chained assertions about one response (``Outcome.expect``)."""

    def __init__(self, outcome: Outcome, response: Response, name: Optional[str] = None):
        self.outcome, self.response, self.name = outcome, response, name

    def _that(self, name: str, ok: bool, detail: str) -> "Expect":
        self.outcome.assert_(f"{self.name}: {name}" if self.name else name, ok, detail)
        return self

    def status_is(self, code: int) -> "Expect":
        return self._that(f"status is {code}", self.response.status == code, f"got {self.response.status}")

    def status_in(self, codes: Iterable[int]) -> "Expect":
        codes = list(codes)
        return self._that(f"status in {codes}", self.response.status in codes, f"got {self.response.status}")

    def status_matches(self, spec: str) -> "Expect":
        """``"2xx"``, ``"200-299"``, ``"200,204"``."""
        return self._that(f"status is {spec}", _status_in(self.response.status, spec), f"got {self.response.status}")

    def body_contains(self, needle: str) -> "Expect":
        return self._that(f"body contains {needle!r}", needle in self.response.text,
                          f"{len(self.response.body)} bytes")

    def body_not_contains(self, needle: str) -> "Expect":
        return self._that(f"body does not contain {needle!r}", needle not in self.response.text,
                          f"{len(self.response.body)} bytes")

    def body_matches(self, pattern: str) -> "Expect":
        return self._that(f"body matches /{pattern}/", _re.search(pattern, self.response.text) is not None,
                          f"{len(self.response.body)} bytes")

    def header_present(self, name: str) -> "Expect":
        value = self.response.header(name)
        return self._that(f"header {name} present", value is not None, value or "absent")

    def header_eq(self, name: str, expected: str) -> "Expect":
        value = self.response.header(name)
        return self._that(f"header {name} is {expected!r}", value == expected, repr(value))

    def header_matches(self, name: str, pattern: str) -> "Expect":
        value = self.response.header(name)
        ok = value is not None and _re.search(pattern, value) is not None
        return self._that(f"header {name} matches /{pattern}/", ok, repr(value))

    def json_pointer_eq(self, pointer: str, expected: Any) -> "Expect":
        try:
            found, value = _pointer(self.response.json(), pointer)
        except ValueError:
            return self._that(f"json {pointer} is {expected!r}", False, "the body is not JSON")
        detail = f"got {_json.dumps(value)}" if found else "absent"
        return self._that(f"json {pointer} is {_json.dumps(expected)}", found and value == expected, detail)

    def json_pointer_exists(self, pointer: str) -> "Expect":
        try:
            found, _ = _pointer(self.response.json(), pointer)
        except ValueError:
            return self._that(f"json {pointer} exists", False, "the body is not JSON")
        return self._that(f"json {pointer} exists", found, "present" if found else "absent")

    def latency_below(self, seconds: Optional[float]) -> "Expect":
        if seconds is None:
            return self
        took = self.response.elapsed
        return self._that(f"latency below {seconds * 1000:.0f} ms", took < seconds, f"took {took * 1000:.0f} ms")


# --------------------------------------------------------------------------
# The check and its export


class Check:
    """Subclass it: set ``name``, ``version``, ``description``, ``outbound``
    (patterns the check may reach; ``TARGET`` for the operator's targets),
    ``secrets`` (names it reads), ``config`` (``Key``s) and ``modes``;
    implement ``run(self, ctx) -> Outcome``. Then ``WitWorld = export(MyCheck)``."""

    name: str = "check"
    version: str = "0.1.0"
    description: str = ""
    outbound: Sequence[str] = ()
    secrets: Sequence[str] = ()
    config: Sequence[Key] = ()
    modes: Sequence[str] = ("edge", "restore")

    def run(self, ctx: Context) -> Outcome:  # pragma: no cover - overridden
        raise NotImplementedError("implement run(self, ctx) -> Outcome")


def _unknown_keys(ctx_config: Iterable[str], keys: Sequence[Key]) -> List[str]:
    return [k for k in ctx_config if not any(key.matches(k) for key in keys)]


def _fail(message: str) -> Any:
    return _c.CheckResult(_c.Status.FAIL, message, [_c.Assertion(message, _c.AssertionState.FAIL, message, None)], [], [])


def export(check: type) -> type:
    """The ``WitWorld`` class componentize-py exports, for ``check``."""

    class WitWorld:
        def describe(self) -> Any:
            modes = [_c.Mode.RESTORE if m == "restore" else _c.Mode.EDGE for m in check.modes]
            return _c.Metadata(
                check.name, check.version, check.description,
                _c.Capabilities(list(check.outbound), list(check.secrets)),
                [k.to_wit() for k in check.config], modes,
            )

        def run(self, context: Any) -> Any:
            unknown = _unknown_keys((k for k, _ in context.config), check.config)
            if unknown:
                declared = ", ".join(k.key for k in check.config) or "none"
                return _fail(f"unknown config key {unknown[0]!r} (this check declares: {declared})")
            try:
                outcome = check().run(Context(context, check.config))
            except VantageError as e:
                return _fail(str(e))
            # Any other exception is a bug: componentize-py prints its
            # traceback on stderr and traps; the host puts the last lines
            # in the result's error.
            if not isinstance(outcome, Outcome):
                raise TypeError(f"{check.__name__}.run returned {type(outcome).__name__}, not an Outcome")
            return outcome.to_wit()

    WitWorld.__name__ = "WitWorld"
    return WitWorld


# urllib.request, http.client and requests through wasi:http (a copy of the
# SDK without the module still imports, without them).
import importlib.util as _importlib_util  # noqa: E402

if _importlib_util.find_spec(__name__ + ".stdlib_http") is not None:
    from . import stdlib_http  # noqa: F401
