// Types of the Vantage check SDK for JavaScript and TypeScript (index.js).

/** The SDK's version, the WIT world's. */
export const VERSION: string;
/** The WIT world this SDK targets. */
export const WIT_WORLD: string;
/** The outbound pattern that stands for the operator's targets. */
export const TARGET: '{target}';

/** An expected failure: escaping `run`, it fails the run with its message. */
export class VantageError extends Error {}
/** A configuration value that is missing or cannot be read as its type. */
export class ConfigError extends VantageError {
  constructor(key: string, message: string);
  key: string;
}
/** A secret the check may not read, or that could not be read. */
export class SecretError extends VantageError {}
/** Why a network call gave no answer. */
export class NetError extends VantageError {
  constructor(kind: string, detail: unknown);
  /** `denied`, `dns`, `connect`, `tls`, `timeout`, `body-too-large`, `too-many-redirects`, `protocol`, `limit-exceeded`, `invalid-request`, `unsupported`. */
  kind: string;
  detail: unknown;
}
/** An HTTP exchange that ended without a complete response. */
export class FetchError extends NetError {
  timings: Timings;
  response?: Response;
}

/** A configuration key's type. */
export type KeyType = 'text' | 'integer' | 'number' | 'boolean' | 'duration' | 'regex' | 'url'
  | 'host-port' | 'status-range' | 'pem' | 'size';

export interface KeyOptions {
  type?: KeyType;
  default?: string;
  required?: boolean;
  repeated?: boolean;
  sensitive?: boolean;
  choices?: string[];
  min?: number;
  max?: number;
}

/** One configuration key the check understands (`<name>` stands for any one segment). */
export class Key {
  constructor(key: string, description: string, options?: KeyOptions);
  key: string;
  description: string;
  /** Whether the configured key `name` is this key. */
  matches(name: string): boolean;
}

/** `"250ms"`, `"5s"`, `"1m30s"` → seconds. */
export function parseDuration(text: string): number;

/** What the host tells a run. */
export class Context {
  checkName: string;
  targets: string[];
  location: string;
  mode: 'edge' | 'restore';
  /** The run's budget, seconds. */
  timeout: number;
  runId: string;
  /** Dotted keys, string values; declared defaults filled in. */
  config: Record<string, string>;
  get(key: string): string | undefined;
  get(key: string, dflt: string): string;
  require(key: string): string;
  getInt(key: string, dflt?: number): number | undefined;
  getNumber(key: string, dflt?: number): number | undefined;
  getBool(key: string, dflt?: boolean): boolean | undefined;
  /** Seconds. */
  getDuration(key: string, dflt?: number): number | undefined;
  getList(key: string): string[];
  requireTargets(why?: string): string[];
}

/** Lines for the run's log. */
export const log: {
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};

/** Secrets the operator granted the check. */
export const secrets: {
  /** Throws `SecretError` when not granted or unavailable. */
  get(name: string): string;
};

/** Per-phase timings of an exchange, milliseconds. */
export interface Timings {
  resolveMs: number;
  connectMs: number;
  tlsMs: number;
  processingMs: number;
  transferMs: number;
  totalMs: number;
}

/** An HTTP response. */
export class Response {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  url: string;
  version: string;
  timings: Timings;
  redirects: { url: string; status: number; location: string }[];
  text(): string;
  json(): any;
  header(name: string): string | undefined;
  /** Total time, seconds. */
  readonly elapsed: number;
}

export interface FetchOptions {
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Seconds. */
  timeout?: number;
  followRedirects?: boolean;
  maxRedirects?: number;
  maxBodyBytes?: number;
  insecure?: boolean;
  caBundle?: string;
  serverName?: string;
  http2?: boolean;
}

/** HTTP(S) through the host, timed per phase, under the outbound policy. */
export const http: {
  /** A 4xx/5xx is a response; no answer throws `FetchError`. */
  fetch(method: string, url: string, options?: FetchOptions): Response;
  get(url: string, options?: FetchOptions): Response;
  post(url: string, options?: FetchOptions & { json?: unknown }): Response;
};

/** What a run found. */
export class Outcome {
  assert(name: string, ok: boolean, detail?: string, durationMs?: number): this;
  assertOrWarn(name: string, ok: boolean, detail?: string): this;
  fail(reason: string): this;
  degrade(reason: string): this;
  measure(name: string, value: number, unit?: string, labels?: Record<string, string>): this;
  label(key: string, value: string): this;
  headline(text: string): this;
  setSummary(text: string): this;
  expect(response: Response): Expect;
  measureResponse(response: Response): this;
  readonly status: 'pass' | 'degraded' | 'fail';
  summary(): string;
}

/** Chained assertions about one response. */
export class Expect {
  statusIs(code: number): this;
  statusIn(codes: number[]): this;
  /** `"2xx"`, `"200-299"`, `"200,204"`. */
  statusMatches(spec: string): this;
  bodyContains(needle: string): this;
  bodyNotContains(needle: string): this;
  bodyMatches(pattern: string): this;
  headerPresent(name: string): this;
  headerEq(name: string, expected: string): this;
  headerMatches(name: string, pattern: string): this;
  jsonPointerEq(pointer: string, expected: unknown): this;
  jsonPointerExists(pointer: string): this;
  /** Seconds. */
  latencyBelow(seconds: number | undefined): this;
}

/** Extend it; set the statics; implement `run`. */
export class Check {
  static name_: string;
  static version: string;
  static description: string;
  static outbound: string[];
  static secrets: string[];
  static config: Key[];
  static modes: ('edge' | 'restore')[];
  /** The run; `async` to `await fetch(...)` (the event loop runs until it settles). */
  run(ctx: Context): Outcome | Promise<Outcome>;
}

/** The world's exports for a check class: `export const { describe, run } = exportCheck(MyCheck)`. */
export function exportCheck(check: typeof Check): { describe(): unknown; run(context: unknown): unknown };
