// Pure classification of one HTTP exchange into a DeliveryResult value. The dispatcher feeds it
// either a status (the receiver answered) or an error (it did not); nothing here does I/O.
// Errors are told apart by their `code` (Node's errno codes, undici's UND_ERR_*, ours), never by
// message text: the message only becomes the human-readable `error` string.

import type { DeliveryResult, ErrorKind } from '../domain/attempt.js';

/** The code DestinationBlockedError carries (ssrf.ts); kept here so classify stays import-free. */
export const BLOCKED_CODE = 'PULSEGATE_BLOCKED';

const RETRYABLE_4XX = new Set([408, 425, 429]);
const RETRY_AFTER_STATUSES = new Set([429, 503]);

export interface HttpAnswer {
  status: number;
  /** The Retry-After header's value, if any (only honoured on 429 and 503). */
  retryAfter: string | null;
  body: string | null;
  /** Epoch ms, for an HTTP-date Retry-After. */
  now: number;
}

/** 2xx succeeds; 408/425/429/5xx may succeed later; every other status (3xx included) never will. */
export function classifyStatus(answer: HttpAnswer): DeliveryResult {
  const { status, body } = answer;
  if (status >= 200 && status < 300) return { outcome: 'success', status_code: status, response_body: body };
  const error = `HTTP ${status}`;
  if (RETRYABLE_4XX.has(status) || (status >= 500 && status < 600)) {
    const retry_after_ms =
      RETRY_AFTER_STATUSES.has(status) && answer.retryAfter !== null ? parseRetryAfter(answer.retryAfter, answer.now) : null;
    return { outcome: 'retryable_error', error_kind: 'http', status_code: status, error, response_body: body, retry_after_ms };
  }
  return { outcome: 'permanent_error', error_kind: 'http', status_code: status, error, response_body: body };
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA', 'ENODATA', 'ESERVFAIL']);
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
]);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_ABORTED',
]);
// OpenSSL's certificate verification codes, as Node surfaces them on `err.code`.
const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
]);
// A request undici refuses to build (e.g. a header value with a newline): sending it again cannot help.
const INVALID_REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_URL', 'ERR_INVALID_CHAR']);

/** What kind of failure an error code names, or null when the code is unknown. */
export function kindOfCode(code: string): { kind: ErrorKind; permanent: boolean } | null {
  if (code === BLOCKED_CODE) return { kind: 'blocked', permanent: true };
  if (TIMEOUT_CODES.has(code)) return { kind: 'timeout', permanent: false };
  if (DNS_CODES.has(code)) return { kind: 'dns', permanent: false };
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('ERR_OSSL_')) {
    return { kind: 'tls', permanent: false };
  }
  if (CONNECT_CODES.has(code)) return { kind: 'connect', permanent: false };
  if (INVALID_REQUEST_CODES.has(code)) return { kind: 'http', permanent: true };
  // llhttp's parse errors: the receiver spoke something that is not HTTP/1.1. It may be mid-deploy.
  if (code.startsWith('HPE_')) return { kind: 'http', permanent: false };
  return null;
}

/** The error and its causes (and an AggregateError's members), outermost first, bounded. */
function errorChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (e === null || e === undefined || out.includes(e)) continue;
    out.push(e);
    if (typeof e === 'object') {
      const o = e as { cause?: unknown; errors?: unknown };
      if (o.cause !== undefined) queue.push(o.cause);
      if (Array.isArray(o.errors)) queue.push(...(o.errors as unknown[]));
    }
  }
  return out;
}

function codeOf(e: unknown): string | null {
  if (typeof e !== 'object' || e === null) return null;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' ? code : null;
}

const MAX_ERROR_CHARS = 300;

/** A short description: the first non-empty message in the chain, else the first code. */
export function describeError(err: unknown): string {
  const chain = errorChain(err);
  for (const e of chain) {
    if (e instanceof Error && e.message.trim() !== '') return truncate(e.message.trim());
  }
  for (const e of chain) {
    const code = codeOf(e);
    if (code) return code;
  }
  return truncate(String(err)) || 'unknown error';
}

function truncate(s: string): string {
  return s.length > MAX_ERROR_CHARS ? `${s.slice(0, MAX_ERROR_CHARS - 1)}…` : s;
}

export interface FailureContext {
  /** Set when our own whole-exchange timer fired: whatever error surfaced, the cause was the deadline. */
  timedOut: boolean;
  timeoutMs: number;
  /** The status, when headers had arrived before the failure (e.g. the body trickled past the deadline). */
  status: number | null;
  /** What was read of the body before the failure. */
  body: string | null;
}

/** Classifies a failed exchange. An unrecognised error is treated as a retryable connection failure. */
export function classifyError(err: unknown, ctx: FailureContext): DeliveryResult {
  const base = { status_code: ctx.status, response_body: ctx.body };
  if (ctx.timedOut) {
    const phase = ctx.status === null ? 'waiting for the response' : 'reading the response body';
    return { outcome: 'retryable_error', error_kind: 'timeout', error: `timeout after ${ctx.timeoutMs} ms ${phase}`, retry_after_ms: null, ...base };
  }
  let found: { kind: ErrorKind; permanent: boolean } | null = null;
  let tlsReason: string | null = null;
  for (const e of errorChain(err)) {
    const code = codeOf(e);
    const k = code ? kindOfCode(code) : null;
    // A blocked address anywhere in the chain wins: it must never be retried.
    if (k?.kind === 'blocked') {
      found = k;
      break;
    }
    // OpenSSL's messages are long dumps; its short `reason` with the code reads better.
    const reason = (e as { reason?: unknown }).reason;
    if (k?.kind === 'tls' && tlsReason === null && typeof reason === 'string') tlsReason = `TLS ${reason} (${code})`;
    found ??= k;
  }
  const error = found?.kind === 'tls' && tlsReason !== null ? tlsReason : describeError(err);
  const { kind, permanent } = found ?? { kind: 'connect' as const, permanent: false };
  if (permanent) return { outcome: 'permanent_error', error_kind: kind, error, ...base };
  return { outcome: 'retryable_error', error_kind: kind, error, retry_after_ms: null, ...base };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const TIME = String.raw`(?<h>\d{2}):(?<mi>\d{2}):(?<s>\d{2})`;
// RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms a recipient must still accept.
const HTTP_DATES = [
  new RegExp(String.raw`^[A-Za-z]{3}, (?<d>\d{2}) (?<mon>[A-Za-z]{3}) (?<y>\d{4}) ${TIME} GMT$`),
  new RegExp(String.raw`^[A-Za-z]{6,9}, (?<d>\d{2})-(?<mon>[A-Za-z]{3})-(?<y>\d{2}) ${TIME} GMT$`),
  new RegExp(String.raw`^[A-Za-z]{3} (?<mon>[A-Za-z]{3}) (?<d>[ \d]\d) ${TIME} (?<y>\d{4})$`),
];

/** Parses an HTTP-date (RFC 9110) to epoch ms; null when it is not one. */
export function parseHttpDate(value: string, now: number): number | null {
  const g = HTTP_DATES.map((re) => re.exec(value)?.groups).find((x) => x !== undefined);
  if (!g) return null;
  const num = (name: string) => Number((g[name] ?? '').trim());
  let year = num('y');
  if ((g.y ?? '').length === 2) {
    // rfc850's two-digit year: one more than 50 years in the future is in the past (RFC 9110).
    const thisYear = new Date(now).getUTCFullYear();
    year += Math.floor(thisYear / 100) * 100;
    if (year > thisYear + 50) year -= 100;
  }
  const month = MONTHS.indexOf((g.mon ?? '').toLowerCase());
  const [d, h, mi, s] = [num('d'), num('h'), num('mi'), num('s')];
  if (month < 0 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  const ms = Date.UTC(year, month, d, h, mi, Math.min(s, 59));
  // Reject dates Date.UTC silently rolled over (31 Feb → 3 Mar).
  if (new Date(ms).getUTCDate() !== d) return null;
  return ms;
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, to milliseconds from `now`.
 * A date in the past means "now" (0). Anything else is null: a malformed header asks for nothing.
 */
export function parseRetryAfter(value: string, now: number): number | null {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const seconds = Number(v);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : null;
  }
  const at = parseHttpDate(v, now);
  if (at === null) return null;
  return Math.max(0, at - now);
}
