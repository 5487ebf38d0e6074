// Vantage checks in JavaScript and TypeScript (componentize-js 0.23).
//
// A check is a WebAssembly component built against the `vantage:check@0.2.0`
// world (`wit/`); this module wraps the host interfaces with the Rust SDK's
// names:
//
//   import { Check, Key, Outcome, TARGET, exportCheck, http } from './vantage-check/index.js';
//
//   class Healthz extends Check {
//     static name_ = 'healthz-js';
//     static outbound = [TARGET];
//     static config = [new Key('latency.max', 'Slowest acceptable response.', { type: 'duration', default: '2s' })];
//     run(ctx) {
//       const out = new Outcome();
//       for (const url of ctx.requireTargets()) {
//         const response = http.get(url);
//         out.expect(response).statusMatches('2xx').latencyBelow(ctx.getDuration('latency.max'));
//         out.measureResponse(response);
//       }
//       return out;
//     }
//   }
//   export const { describe, run } = exportCheck(Healthz);
//
// Errors: a `VantageError` (`NetError`, `SecretError`, `ConfigError`) that
// escapes `run` fails the run with its message, like the Rust SDK's `Err`;
// any other error is a bug: the run ends with status `error`, its message
// and stack in the result.

import { fetch as hostFetch } from 'vantage:check/http@0.2.0';
import { log as hostLog } from 'vantage:check/log@0.2.0';
import { get as hostSecret } from 'vantage:check/secrets@0.2.0';

/** The SDK's version, the WIT world's. */
export const VERSION = '0.2.0';
/** The WIT world this SDK targets. */
export const WIT_WORLD = 'vantage:check/check@0.2.0';
/** The outbound pattern that stands for the operator's targets. */
export const TARGET = '{target}';

// ---------------------------------------------------------------------------
// Errors

/** An expected failure: escaping `run`, it fails the run with its message. */
export class VantageError extends Error {}

/** A configuration value that is missing or cannot be read as its type. */
export class ConfigError extends VantageError {
  constructor(key, message) {
    super(`config key '${key}': ${message}`);
    this.key = key;
  }
}

/** A secret the check may not read, or that could not be read. */
export class SecretError extends VantageError {}

/** Why a network call gave no answer: `kind` (`denied`, `dns`, `connect`,
 * `tls`, `timeout`, `body-too-large`, …) and `detail`. */
export class NetError extends VantageError {
  constructor(kind, detail) {
    super(`${kind}: ${detail}`);
    this.kind = kind;
    this.detail = detail;
  }
}

/** An HTTP exchange that ended without a complete response, with the phases
 * measured (`timings`) and the partial `response`, if any. */
export class FetchError extends NetError {
  constructor(kind, detail, timings, response) {
    super(kind, detail);
    this.timings = timings;
    this.response = response;
  }
}

// ---------------------------------------------------------------------------
// Configuration keys

const TYPES = ['text', 'integer', 'number', 'boolean', 'duration', 'regex', 'url', 'host-port',
  'status-range', 'pem', 'size'];

/** One configuration key the check understands. `type` is one of `text`,
 * `integer`, `number`, `boolean`, `duration`, `regex`, `url`, `host-port`,
 * `status-range`, `pem`, `size` (or give `choices`); `<name>` in a key stands
 * for any one segment; `repeated` keys take a list. A key not declared fails
 * the run before `run` is called, naming it. */
export class Key {
  constructor(key, description, { type = 'text', default: dflt, required = false, repeated = false,
    sensitive = false, choices, min, max } = {}) {
    if (!choices && !TYPES.includes(type)) throw new Error(`unknown key type '${type}' for '${key}'`);
    Object.assign(this, { key, description, type, default: dflt, required, repeated, sensitive, choices, min, max });
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/<[^>]*>/g, '[^.]+');
    this.pattern = new RegExp(`^${escaped}${repeated ? '(\\.\\d+)?' : ''}$`);
  }

  /** Whether the configured key `name` is this key. */
  matches(name) {
    return this.pattern.test(name);
  }

  toWit() {
    let valueType;
    if (this.choices) valueType = { tag: 'choice', val: [...this.choices] };
    else if (this.type === 'integer') valueType = { tag: 'integer', val: [this.min, this.max] };
    else valueType = { tag: this.type };
    return {
      key: this.key, description: this.description, valueType, repeated: this.repeated,
      default: this.default, required: this.required, sensitive: this.sensitive,
    };
  }
}

// ---------------------------------------------------------------------------
// The run's context

const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** `"250ms"`, `"5s"`, `"1m30s"` → seconds. */
export function parseDuration(text) {
  const parts = [...String(text).matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)];
  const rest = String(text).replace(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g, '').trim();
  if (parts.length === 0 || rest) throw new Error(`not a duration: '${text}' (write e.g. 500ms, 5s, 1m)`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit], 0);
}

/** What the host tells a run: targets, configuration (dotted keys, string
 * values, defaults of declared keys filled in), location, mode, run id. */
export class Context {
  constructor(raw, keys = []) {
    this.checkName = raw.checkName;
    this.targets = [...raw.targets];
    this.location = raw.location;
    this.mode = raw.mode;
    this.timeout = Number(raw.timeoutMs) / 1000;
    this.runId = raw.runId;
    this.config = {};
    for (const k of keys) if (k.default !== undefined) this.config[k.key] = k.default;
    for (const [k, v] of raw.config) this.config[k] = v;
  }

  /** The value of `key` as written, or `dflt`. */
  get(key, dflt = undefined) {
    return key in this.config ? this.config[key] : dflt;
  }

  /** The value of `key`; `ConfigError` when it is not set. */
  require(key) {
    if (!(key in this.config)) throw new ConfigError(key, "missing: set it in the check's config");
    return this.config[key];
  }

  #typed(key, dflt, parse, what) {
    if (!(key in this.config)) return dflt;
    try {
      return parse(this.config[key]);
    } catch {
      throw new ConfigError(key, `'${this.config[key]}' is not ${what}`);
    }
  }

  /** `key` as an integer. */
  getInt(key, dflt) {
    return this.#typed(key, dflt, (v) => {
      if (!/^-?\d+$/.test(v)) throw new Error(v);
      return Number(v);
    }, 'an integer');
  }

  /** `key` as a number. */
  getNumber(key, dflt) {
    return this.#typed(key, dflt, (v) => {
      const n = Number(v);
      if (v.trim() === '' || Number.isNaN(n)) throw new Error(v);
      return n;
    }, 'a number');
  }

  /** `key` as a boolean (`true`/`false`). */
  getBool(key, dflt) {
    return this.#typed(key, dflt, (v) => {
      if (!['true', 'false'].includes(v.toLowerCase())) throw new Error(v);
      return v.toLowerCase() === 'true';
    }, 'true or false');
  }

  /** `key` as a duration, in seconds (`"500ms"` → `0.5`). */
  getDuration(key, dflt) {
    return this.#typed(key, dflt, parseDuration, 'a duration (e.g. 500ms, 5s)');
  }

  /** A repeated key's values (`key.0`, `key.1`, …), or the single value. */
  getList(key) {
    const items = Object.entries(this.config)
      .filter(([k]) => k.startsWith(`${key}.`) && /^\d+$/.test(k.slice(key.length + 1)))
      .sort(([a], [b]) => Number(a.slice(key.length + 1)) - Number(b.slice(key.length + 1)))
      .map(([, v]) => v);
    if (items.length) return items;
    return key in this.config ? [this.config[key]] : [];
  }

  /** The targets; `ConfigError` when there are none. */
  requireTargets(why = 'give this check a target') {
    if (this.targets.length === 0) throw new ConfigError('targets', `none given: ${why}`);
    return this.targets;
  }
}

// ---------------------------------------------------------------------------
// Host capabilities

/** Lines for the run's log (redacted by the host, bounded). */
export const log = {
  debug: (message) => hostLog('debug', String(message)),
  info: (message) => hostLog('info', String(message)),
  warn: (message) => hostLog('warn', String(message)),
  error: (message) => hostLog('error', String(message)),
};

/** Secrets the operator granted the check. */
export const secrets = {
  /** The secret `name`; `SecretError` when not granted or unavailable. */
  get(name) {
    try {
      return hostSecret(name);
    } catch (e) {
      const payload = e && e.payload;
      if (payload && payload.tag === 'not-granted') {
        throw new SecretError(`secret '${name}' is not granted to this check`);
      }
      throw new SecretError(`secret '${name}' is unavailable: ${payload ? payload.val : e}`);
    }
  },
};

/** Per-phase timings of an exchange, in milliseconds. */
function timings(t) {
  return {
    resolveMs: t.resolveMs, connectMs: t.connectMs, tlsMs: t.tlsMs,
    processingMs: t.processingMs, transferMs: t.transferMs, totalMs: t.totalMs,
  };
}

/** An HTTP response: `status`, `headers` (in order), `body` (bytes),
 * `text()`, `json()`, `header(name)`, `url`, `timings`, `elapsed` (s). */
export class Response {
  constructor(r) {
    this.status = r.status;
    this.headers = r.headers.map(([k, v]) => [k, v]);
    this.body = r.body;
    this.url = r.url;
    this.version = r.version;
    this.timings = timings(r.timings);
    this.redirects = r.redirects.map((x) => ({ url: x.url, status: x.status, location: x.location }));
  }

  /** The body as UTF-8 text. */
  text() {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON (throws `SyntaxError` when it is not JSON). */
  json() {
    return JSON.parse(this.text());
  }

  /** The first value of header `name` (case-insensitive). */
  header(name) {
    const found = this.headers.find(([k]) => k.toLowerCase() === name.toLowerCase());
    return found ? found[1] : undefined;
  }

  /** Total time, seconds. */
  get elapsed() {
    return this.timings.totalMs / 1000;
  }
}

/** HTTP(S) through the host: the outbound policy applies, every phase is
 * timed and recorded in the run's trace. (The global `fetch` works too, over
 * `wasi:http`, under the same policy.) */
export const http = {
  /** One exchange. A 4xx/5xx status is a response; no answer at all throws a
   * `FetchError`. */
  fetch(method, url, { headers = {}, body, timeout, followRedirects = true, maxRedirects, maxBodyBytes,
    insecure = false, caBundle, serverName, http2 = false } = {}) {
    const request = {
      method, url, headers: Object.entries(headers), body: body === undefined ? undefined : toBytes(body),
      timeoutMs: timeout === undefined ? undefined : BigInt(Math.round(timeout * 1000)),
      followRedirects, maxRedirects, maxBodyBytes: maxBodyBytes === undefined ? undefined : BigInt(maxBodyBytes),
      tls: { serverName, caBundlePem: caBundle, clientCertSecret: undefined, insecure, minVersion: undefined, maxVersion: undefined },
      proxy: undefined, compression: undefined, http2, ip: { preferred: undefined, fallback: true },
    };
    try {
      return new Response(hostFetch(request));
    } catch (e) {
      const failed = e && e.payload;
      if (!failed || !failed.error) throw e;
      throw new FetchError(failed.error.tag, failed.error.val, timings(failed.timings),
        failed.response ? new Response(failed.response) : undefined);
    }
  },

  /** `GET url`. */
  get(url, options = {}) {
    return http.fetch('GET', url, options);
  },

  /** `POST url` with `options.body`, or `options.json` serialised (and its content type). */
  post(url, options = {}) {
    const { json, ...rest } = options;
    if (json !== undefined) {
      rest.body = JSON.stringify(json);
      rest.headers = { 'content-type': 'application/json', ...(rest.headers || {}) };
    }
    return http.fetch('POST', url, rest);
  },
};

function toBytes(body) {
  return typeof body === 'string' ? new TextEncoder().encode(body) : body;
}

// ---------------------------------------------------------------------------
// The verdict

/** What a run found: assertions, measurements, labels; its status is the
 * worst assertion (`fail` > `degraded`); its summary counts them unless set. */
export class Outcome {
  constructor() {
    this.assertions = [];
    this.measurements = [];
    this.labels = [];
    this.headlineText = undefined;
    this.summaryText = undefined;
  }

  /** Record that the claim `name` held (or not). */
  assert(name, ok, detail = '', durationMs = undefined) {
    this.assertions.push({ name, state: ok ? 'pass' : 'fail', detail: String(detail), durationMs });
    return this;
  }

  /** A claim that only degrades the run when it does not hold. */
  assertOrWarn(name, ok, detail = '') {
    this.assertions.push({ name, state: ok ? 'pass' : 'warn', detail: String(detail), durationMs: undefined });
    return this;
  }

  /** Fail the run with `reason`. */
  fail(reason) {
    return this.assert(reason, false, reason);
  }

  /** Degrade the run with `reason`. */
  degrade(reason) {
    return this.assertOrWarn(reason, false, reason);
  }

  /** A named number, exported as a metric. */
  measure(name, value, unit = '', labels = {}) {
    this.measurements.push({ name, value: Number(value), unit, labels: Object.entries(labels).map(([k, v]) => [k, String(v)]) });
    return this;
  }

  /** An extra label on the result. */
  label(key, value) {
    this.labels.push([key, String(value)]);
    return this;
  }

  /** What the summary starts with. */
  headline(text) {
    this.headlineText = text;
    return this;
  }

  /** The whole summary, replacing the generated one. */
  setSummary(text) {
    this.summaryText = text;
    return this;
  }

  /** Assertions about `response`, chained. */
  expect(response) {
    return new Expect(this, response);
  }

  /** The response's status and per-phase timings as measurements. */
  measureResponse(response) {
    this.measure('http_status_code', response.status);
    for (const phase of ['resolve', 'connect', 'tls', 'processing', 'transfer', 'total']) {
      this.measure(`http_${phase}_ms`, response.timings[`${phase}Ms`], 'ms');
    }
    return this;
  }

  /** `pass`, `degraded` or `fail`. */
  get status() {
    const states = new Set(this.assertions.map((a) => a.state));
    return states.has('fail') ? 'fail' : states.has('warn') ? 'degraded' : 'pass';
  }

  summary() {
    if (this.summaryText !== undefined) return this.summaryText;
    const failed = this.assertions.filter((a) => a.state === 'fail').map((a) => a.name);
    let counted = `${this.assertions.length - failed.length}/${this.assertions.length} assertions passed`;
    if (failed.length) counted += `; failed: ${failed.slice(0, 3).join(', ')}`;
    return this.headlineText ? `${this.headlineText}, ${counted}` : counted;
  }

  toWit() {
    return {
      status: this.status, summary: this.summary(),
      assertions: this.assertions.map((a) => ({ ...a })),
      measurements: this.measurements.map((m) => ({ ...m })),
      labels: this.labels,
    };
  }
}

function statusIn(code, spec) {
  return String(spec).split(',').map((p) => p.trim()).some((part) => {
    const cls = /^([1-5])xx$/.exec(part);
    if (cls) return Math.floor(code / 100) === Number(cls[1]);
    if (part.includes('-')) {
      const [low, high] = part.split('-').map(Number);
      return low <= code && code <= high;
    }
    return /^\d+$/.test(part) && code === Number(part);
  });
}

function pointer(doc, path) {
  if (path === '') return [true, doc];
  let here = doc;
  for (const raw of path.replace(/^\//, '').split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (here !== null && typeof here === 'object' && Object.prototype.hasOwnProperty.call(here, part)) {
      here = here[part];
    } else {
      return [false, undefined];
    }
  }
  return [true, here];
}

/** Chained assertions about one response (`Outcome.expect`). */
export class Expect {
  constructor(outcome, response) {
    this.outcome = outcome;
    this.response = response;
  }

  #that(name, ok, detail) {
    this.outcome.assert(name, ok, detail);
    return this;
  }

  statusIs(code) {
    return this.#that(`status is ${code}`, this.response.status === code, `got ${this.response.status}`);
  }

  statusIn(codes) {
    return this.#that(`status in [${codes.join(', ')}]`, codes.includes(this.response.status), `got ${this.response.status}`);
  }

  /** `"2xx"`, `"200-299"`, `"200,204"`. */
  statusMatches(spec) {
    return this.#that(`status is ${spec}`, statusIn(this.response.status, spec), `got ${this.response.status}`);
  }

  bodyContains(needle) {
    return this.#that(`body contains '${needle}'`, this.response.text().includes(needle), `${this.response.body.length} bytes`);
  }

  bodyNotContains(needle) {
    return this.#that(`body does not contain '${needle}'`, !this.response.text().includes(needle), `${this.response.body.length} bytes`);
  }

  bodyMatches(pattern) {
    return this.#that(`body matches /${pattern}/`, new RegExp(pattern).test(this.response.text()), `${this.response.body.length} bytes`);
  }

  headerPresent(name) {
    const value = this.response.header(name);
    return this.#that(`header ${name} present`, value !== undefined, value ?? 'absent');
  }

  headerEq(name, expected) {
    const value = this.response.header(name);
    return this.#that(`header ${name} is '${expected}'`, value === expected, String(value));
  }

  headerMatches(name, pattern) {
    const value = this.response.header(name);
    return this.#that(`header ${name} matches /${pattern}/`, value !== undefined && new RegExp(pattern).test(value), String(value));
  }

  jsonPointerEq(path, expected) {
    let doc;
    try {
      doc = this.response.json();
    } catch {
      return this.#that(`json ${path} is ${JSON.stringify(expected)}`, false, 'the body is not JSON');
    }
    const [found, value] = pointer(doc, path);
    const ok = found && JSON.stringify(value) === JSON.stringify(expected);
    return this.#that(`json ${path} is ${JSON.stringify(expected)}`, ok, found ? `got ${JSON.stringify(value)}` : 'absent');
  }

  jsonPointerExists(path) {
    let doc;
    try {
      doc = this.response.json();
    } catch {
      return this.#that(`json ${path} exists`, false, 'the body is not JSON');
    }
    const [found] = pointer(doc, path);
    return this.#that(`json ${path} exists`, found, found ? 'present' : 'absent');
  }

  latencyBelow(seconds) {
    if (seconds === undefined) return this;
    const took = this.response.elapsed;
    return this.#that(`latency below ${Math.round(seconds * 1000)} ms`, took < seconds, `took ${Math.round(took * 1000)} ms`);
  }
}

// ---------------------------------------------------------------------------
// The check and its export

/** Extend it: set the static `name_`, `version`, `description`, `outbound`,
 * `secrets`, `config` (`Key`s) and `modes`; implement `run(ctx)` returning an
 * `Outcome`. Then `export const { describe, run } = exportCheck(MyCheck)`. */
export class Check {
  static name_ = 'check';
  static version = '0.1.0';
  static description = '';
  static outbound = [];
  static secrets = [];
  static config = [];
  static modes = ['edge', 'restore'];

  run(_ctx) {
    throw new Error('implement run(ctx) returning an Outcome');
  }
}

function failResult(message) {
  return {
    status: 'fail', summary: message,
    assertions: [{ name: message, state: 'fail', detail: message, durationMs: undefined }],
    measurements: [], labels: [],
  };
}

/** The world's exports (`describe`, `run`) for the check class `check`. */
export function exportCheck(check) {
  return {
    describe() {
      return {
        name: check.name_, version: check.version, description: check.description,
        capabilities: { outbound: [...check.outbound], secrets: [...check.secrets] },
        config: check.config.map((k) => k.toWit()),
        modes: [...check.modes],
      };
    },
    run(context) {
      const unknown = context.config.map(([k]) => k).filter((k) => !check.config.some((key) => key.matches(k)));
      if (unknown.length) {
        const declared = check.config.map((k) => k.key).join(', ') || 'none';
        return failResult(`unknown config key '${unknown[0]}' (this check declares: ${declared})`);
      }
      const failed = (e) => {
        if (e instanceof VantageError) return failResult(e.message);
        // A bug: componentize-js prints its message and stack on stderr
        // and traps; the host puts the last lines in the result's error.
        throw e;
      };
      const finish = (outcome) => {
        if (!(outcome instanceof Outcome)) {
          throw new TypeError(`${check.name}.run returned ${outcome}, not an Outcome`);
        }
        return outcome.toWit();
      };
      let outcome;
      try {
        outcome = new check().run(new Context(context, check.config));
      } catch (e) {
        return failed(e);
      }
      // An `async run` (to `await fetch(...)`): componentize-js runs the
      // event loop until the promise settles.
      if (outcome && typeof outcome.then === 'function') return outcome.then(finish, failed);
      return finish(outcome);
    },
  };
}
