// fetch_json: a check written with the standard fetch() (over wasi:http):
// an `async run` awaits it like any JavaScript code would.
import { Check, Key, Outcome, TARGET, exportCheck } from './vantage-check/index.js';

class FetchJson extends Check {
  static name_ = 'fetch-json-js';
  static version = '0.1.0';
  static description = 'GET each target with fetch(); pass on 2xx and the expected JSON field.';
  static outbound = [TARGET];
  static config = [
    new Key('expect.field', 'A top-level JSON field the body must have.', { default: 'status' }),
  ];

  async run(ctx) {
    const out = new Outcome();
    const field = ctx.get('expect.field');
    for (const url of ctx.requireTargets('give this check the URL to fetch')) {
      const started = Date.now();
      const response = await fetch(url);
      const body = await response.json().catch(() => undefined);
      out.assert(`${url}: status is 2xx`, response.ok, `got ${response.status}`);
      out.assert(`${url}: json has ${field}`, body !== undefined && field in body,
        body === undefined ? 'not JSON' : JSON.stringify(body));
      out.headline(`${response.status} in ${Date.now() - started} ms`);
    }
    return out;
  }
}

export const { describe, run } = exportCheck(FetchJson);
