import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyError, classifyStatus, parseHttpDate, parseRetryAfter } from '../../src/delivery/classify.js';
import { DestinationBlockedError } from '../../src/delivery/ssrf.js';

const NOW = Date.parse('2026-01-01T00:00:00.000Z');
const answer = (status: number, retryAfter: string | null = null, body: string | null = null) => ({ status, retryAfter, body, now: NOW });
const noCtx = { timedOut: false, timeoutMs: 1000, status: null, body: null };
const errWithCode = (code: string, message = `boom ${code}`) => Object.assign(new Error(message), { code });

describe('classifyStatus', () => {
  it('treats every 2xx as success and keeps the body', () => {
    for (const s of [200, 201, 202, 204, 299]) {
      assert.deepEqual(classifyStatus(answer(s, null, 'ok')), { outcome: 'success', status_code: s, response_body: 'ok' });
    }
  });

  it('treats 408, 425, 429 and every 5xx as retryable http errors', () => {
    for (const s of [408, 425, 429, 500, 502, 503, 504, 599]) {
      const r = classifyStatus(answer(s));
      assert.equal(r.outcome, 'retryable_error', `status ${s}`);
      assert.equal(r.outcome === 'retryable_error' && r.error_kind, 'http');
      assert.equal(r.outcome === 'retryable_error' && r.error, `HTTP ${s}`);
    }
  });

  it('treats other 4xx and every 3xx as permanent http errors', () => {
    for (const s of [300, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 422, 451]) {
      const r = classifyStatus(answer(s, '10'));
      assert.deepEqual(r, { outcome: 'permanent_error', error_kind: 'http', status_code: s, error: `HTTP ${s}`, response_body: null }, `status ${s}`);
    }
  });

  it('honours Retry-After on 429 and 503 only', () => {
    const r429 = classifyStatus(answer(429, '7'));
    const r503 = classifyStatus(answer(503, 'Thu, 01 Jan 2026 00:00:30 GMT'));
    assert.equal(r429.outcome === 'retryable_error' && r429.retry_after_ms, 7000);
    assert.equal(r503.outcome === 'retryable_error' && r503.retry_after_ms, 30_000);
    for (const s of [408, 500, 502]) {
      const r = classifyStatus(answer(s, '7'));
      assert.equal(r.outcome === 'retryable_error' && r.retry_after_ms, null, `status ${s}`);
    }
  });

  it('gives a null retry_after_ms for a malformed Retry-After', () => {
    const r = classifyStatus(answer(429, 'soon'));
    assert.equal(r.outcome === 'retryable_error' && r.retry_after_ms, null);
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('0', NOW), 0);
    assert.equal(parseRetryAfter('120', NOW), 120_000);
    assert.equal(parseRetryAfter(' 5 ', NOW), 5000);
  });

  it('reads an IMF-fixdate relative to now', () => {
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', NOW), 60_000);
  });

  it('reads the obsolete rfc850 and asctime forms', () => {
    assert.equal(parseRetryAfter('Thursday, 01-Jan-26 00:00:10 GMT', NOW), 10_000);
    assert.equal(parseRetryAfter('Thu Jan  1 00:00:20 2026', NOW), 20_000);
  });

  it('turns a date in the past into 0', () => {
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', NOW), 0);
  });

  it('rejects anything else', () => {
    for (const v of ['', ' ', '-5', '1.5', '1e3', '5s', 'tomorrow', '2026-01-01T00:01:00Z', 'Thu, 01 Jan 2026 00:01:00 PST', 'Thu, 31 Feb 2026 00:00:00 GMT', 'Thu, 01 Foo 2026 00:00:00 GMT', '9'.repeat(400)]) {
      assert.equal(parseRetryAfter(v, NOW), null, JSON.stringify(v.slice(0, 40)));
    }
  });
});

describe('parseHttpDate', () => {
  it('parses the RFC 9110 example in its three forms to the same instant', () => {
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37);
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), expected);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), expected);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), expected);
  });
});

describe('classifyError', () => {
  const cases: [string, string, boolean][] = [
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout', false],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout', false],
    ['UND_ERR_BODY_TIMEOUT', 'timeout', false],
    ['ETIMEDOUT', 'timeout', false],
    ['ECONNREFUSED', 'connect', false],
    ['ECONNRESET', 'connect', false],
    ['EPIPE', 'connect', false],
    ['EHOSTUNREACH', 'connect', false],
    ['ENETUNREACH', 'connect', false],
    ['UND_ERR_SOCKET', 'connect', false],
    ['ENOTFOUND', 'dns', false],
    ['EAI_AGAIN', 'dns', false],
    ['CERT_HAS_EXPIRED', 'tls', false],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls', false],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls', false],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls', false],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls', false],
    ['HPE_INVALID_CONSTANT', 'http', false],
    ['UND_ERR_INVALID_ARG', 'http', true],
    ['PULSEGATE_BLOCKED', 'blocked', true],
  ];
  for (const [code, kind, permanent] of cases) {
    it(`classifies ${code} as ${permanent ? 'permanent' : 'retryable'} '${kind}'`, () => {
      const r = classifyError(errWithCode(code), noCtx);
      assert.ok(r.outcome !== 'success');
      assert.equal(r.outcome, permanent ? 'permanent_error' : 'retryable_error');
      assert.equal(r.error_kind, kind);
      assert.equal(r.error, `boom ${code}`);
    });
  }

  it('classifies by code, not by message text', () => {
    const r = classifyError(errWithCode('ECONNREFUSED', 'getaddrinfo ENOTFOUND certificate timeout'), noCtx);
    assert.equal(r.outcome !== 'success' && r.error_kind, 'connect');
  });

  it('treats a DestinationBlockedError as permanent, wherever it sits in the cause chain', () => {
    const blocked = new DestinationBlockedError('evil.test', '127.0.0.1');
    const wrapped = Object.assign(new Error('connect failed', { cause: blocked }), { code: 'UND_ERR_SOCKET' });
    for (const e of [blocked, wrapped]) {
      const r = classifyError(e, noCtx);
      assert.equal(r.outcome, 'permanent_error');
      assert.equal(r.outcome === 'permanent_error' && r.error_kind, 'blocked');
    }
  });

  it('looks inside an AggregateError from happy-eyeballs connects', () => {
    const agg = new AggregateError([errWithCode('ECONNREFUSED', 'connect ECONNREFUSED ::1:9'), errWithCode('ECONNREFUSED')], '');
    const r = classifyError(agg, noCtx);
    assert.equal(r.outcome !== 'success' && r.error_kind, 'connect');
    assert.equal(r.outcome !== 'success' && r.error, 'connect ECONNREFUSED ::1:9');
  });

  it('calls it a timeout when our deadline fired, whatever error surfaced', () => {
    const r = classifyError(errWithCode('UND_ERR_ABORTED'), { timedOut: true, timeoutMs: 250, status: 200, body: 'par' });
    assert.deepEqual(r, {
      outcome: 'retryable_error',
      error_kind: 'timeout',
      error: 'timeout after 250 ms reading the response body',
      retry_after_ms: null,
      status_code: 200,
      response_body: 'par',
    });
  });

  it('treats an unknown error as a retryable connection failure', () => {
    const r = classifyError(new Error('something odd'), noCtx);
    assert.equal(r.outcome, 'retryable_error');
    assert.equal(r.outcome === 'retryable_error' && r.error_kind, 'connect');
    assert.equal(classifyError('not even an error', noCtx).outcome, 'retryable_error');
  });
});
