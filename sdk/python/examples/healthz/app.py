"""healthz: GET each target and prove it answers as expected, in time."""

from vantage_check import TARGET, Check, Key, Outcome, export, http, log


class Healthz(Check):
    name = "healthz-py"
    version = "0.1.0"
    description = "GET each target; pass when the status matches and the answer is fast enough."
    outbound = [TARGET]
    config = [
        Key("expect.status", "Acceptable statuses: 2xx, 200-299 or 200,204.", default="2xx"),
        Key("expect.body_contains", "Text the body must contain."),
        Key("latency.max", "Slowest acceptable response.", type="duration", default="2s"),
    ]

    def run(self, ctx):
        out = Outcome()
        for url in ctx.require_targets("give this check the URL to fetch"):
            response = http.get(url, timeout=ctx.get_duration("latency.max") * 2)
            log.info(f"{url} answered {response.status} in {response.timings.total_ms:.1f} ms")
            out.headline(f"{response.status} in {response.timings.total_ms:.0f} ms")
            expect = out.expect(response).status_matches(ctx.get("expect.status"))
            if ctx.get("expect.body_contains"):
                expect.body_contains(ctx.get("expect.body_contains"))
            expect.latency_below(ctx.get_duration("latency.max"))
            out.measure_response(response)
        return out


WitWorld = export(Healthz)
