// healthz: GET each target and prove it answers as expected, in time.
import { Check, Key, Outcome, TARGET, exportCheck, http, log } from './vantage-check/index.js';

class Healthz extends Check {
  static name_ = 'healthz-js';
  static version = '0.1.0';
  static description = 'GET each target; pass when the status matches and the answer is fast enough.';
  static outbound = [TARGET];
  static config = [
    new Key('expect.status', 'Acceptable statuses: 2xx, 200-299 or 200,204.', { default: '2xx' }),
    new Key('expect.body_contains', 'Text the body must contain.'),
    new Key('latency.max', 'Slowest acceptable response.', { type: 'duration', default: '2s' }),
  ];

  run(ctx) {
    const out = new Outcome();
    for (const url of ctx.requireTargets('give this check the URL to fetch')) {
      const response = http.get(url, { timeout: ctx.getDuration('latency.max') * 2 });
      log.info(`${url} answered ${response.status} in ${response.timings.totalMs.toFixed(1)} ms`);
      out.headline(`${response.status} in ${Math.round(response.timings.totalMs)} ms`);
      const expect = out.expect(response).statusMatches(ctx.get('expect.status'));
      if (ctx.get('expect.body_contains')) expect.bodyContains(ctx.get('expect.body_contains'));
      expect.latencyBelow(ctx.getDuration('latency.max'));
      out.measureResponse(response);
    }
    return out;
  }
}

export const { describe, run } = exportCheck(Healthz);
