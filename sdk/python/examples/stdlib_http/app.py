"""stdlib_http: GET each target with Python's own HTTP clients, urllib.request
and (when the check vendors it) requests, and prove it answers 2xx with the
expected JSON field.

``import vantage_check`` sends them through wasi:http: the same outbound
policy and budget as ``http.fetch``, each exchange in the run's HTTP trace.
They follow redirects themselves; a redirect to a host the check may not
reach fails naming the refusal. To vendor requests, put it on
componentize-py's path:

    pip install --target vendor --only-binary=:all: --platform any \\
        --python-version 3.14 --implementation py requests
    componentize-py -d wit -w check componentize -p . -p vendor app -o stdlib_http.wasm
"""

import urllib.error
import urllib.request

from vantage_check import TARGET, Check, Key, Outcome, export, log

try:
    import requests
except ImportError:  # not vendored: urllib alone
    requests = None


class StdlibHttp(Check):
    name = "stdlib-http-py"
    version = "0.1.0"
    description = ("GET each target with urllib.request (and requests, when vendored); "
                   "pass on 2xx with the expected JSON field.")
    outbound = [TARGET]
    config = [
        Key("expect.json_pointer", "JSON pointer (RFC 6901) of the field the body must have.", default="/status"),
        Key("expect.json_value", "The text that field must hold.", default="ok"),
        Key("timeout", "How long each request may take.", type="duration", default="5s"),
    ]

    def run(self, ctx):
        out = Outcome()
        pointer, value = ctx.get("expect.json_pointer"), ctx.get("expect.json_value")
        timeout = ctx.get_duration("timeout")
        if requests is not None:
            log.info(f"requests {requests.__version__} vendored")
        for url in ctx.require_targets("give this check the URL of a JSON endpoint"):
            try:
                # urlopen raises HTTPError for a 4xx/5xx: an answer all the same.
                try:
                    response = urllib.request.urlopen(url, timeout=timeout)
                except urllib.error.HTTPError as error:
                    response = error
                with response:
                    expect = out.expect(response, "urllib").status_matches("2xx").json_pointer_eq(pointer, value)
                out.measure("http_total_ms", expect.response.timings.total_ms, "ms", client="urllib")
            except urllib.error.URLError as error:  # no answer: refused, DNS, timeout...
                out.fail(f"urllib: {error.reason}")

            if requests is None:
                continue
            try:
                response = requests.get(url, timeout=timeout)
            except requests.RequestException as error:
                out.fail(f"requests: {error}")
                continue
            expect = out.expect(response, "requests").status_matches("2xx").json_pointer_eq(pointer, value)
            out.measure("http_total_ms", expect.response.timings.total_ms, "ms", client="requests")
        return out


WitWorld = export(StdlibHttp)
