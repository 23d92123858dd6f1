// Every field rule of POST /v1/jobs: a body that breaks one answers 422 validation_failed naming the
// field, and writes nothing. The service in the first suite never accepts a job, so "nothing was
// written" is checked after every request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestService, type TestService } from '../support/service.js';
import { assertJobShape, assertNames, assertNoJobs, createJob, expectError, fieldsOf, LATER } from './helpers.js';

const URL_OK = 'http://127.0.0.1:9/hook';

/** A valid body; each case breaks one rule of it. */
function valid(): Record<string, unknown> {
  return {
    tenant_id: 'acme',
    type: 'order.completed',
    payload: { order_id: 42 },
    destination: { url: URL_OK, method: 'POST', timeout_ms: 5000, headers: { 'X-Trace': 'abc' } },
    retry: { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30_000 },
    rate_limit: { rps: 10, burst: 20 },
    ...LATER,
  };
}

interface Body {
  [field: string]: unknown;
  destination: Record<string, unknown>;
  retry: Record<string, unknown>;
  rate_limit: Record<string, unknown>;
}
const edit = (fn: (b: Body) => void) => () => {
  const b = valid() as Body;
  fn(b);
  return b;
};
/** Removes a field, required or not. */
const drop = (o: object, field: string) => delete (o as Record<string, unknown>)[field];
const headers = (h: Record<string, unknown>) => edit((b) => (b.destination.headers = h));
const manyHeaders = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']));

// [rule, body, the field the answer must name]
const CASES: [string, () => unknown, string][] = [
  // tenant_id
  ['rejects a body without tenant_id', edit((b) => drop(b, 'tenant_id')), 'body.tenant_id'],
  ['rejects an empty tenant_id', edit((b) => (b.tenant_id = '')), 'body.tenant_id'],
  ['rejects a tenant_id longer than 128 characters', edit((b) => (b.tenant_id = 't'.repeat(129))), 'body.tenant_id'],
  ['rejects a tenant_id with a space', edit((b) => (b.tenant_id = 'acme corp')), 'body.tenant_id'],
  ['rejects a tenant_id with a slash', edit((b) => (b.tenant_id = 'acme/../x')), 'body.tenant_id'],
  ['rejects a tenant_id with a non-ASCII letter', edit((b) => (b.tenant_id = 'acmé')), 'body.tenant_id'],
  ['rejects a tenant_id that is not a string', edit((b) => (b.tenant_id = 42)), 'body.tenant_id'],
  // type
  ['rejects a body without type', edit((b) => drop(b, 'type')), 'body.type'],
  ['rejects an empty type', edit((b) => (b.type = '')), 'body.type'],
  ['rejects a type longer than 128 characters', edit((b) => (b.type = 'x'.repeat(129))), 'body.type'],
  ['rejects a type that is not a string', edit((b) => (b.type = ['a'])), 'body.type'],
  // payload
  ['rejects a body without payload', edit((b) => drop(b, 'payload')), 'body.payload'],
  // destination
  ['rejects a body without destination', edit((b) => drop(b, 'destination')), 'body.destination'],
  ['rejects a destination that is not an object', edit((b) => (b.destination = URL_OK as never)), 'body.destination'],
  ['rejects a destination without url', edit((b) => drop(b.destination, 'url')), 'body.destination.url'],
  ['rejects a relative url', edit((b) => (b.destination.url = '/hook')), 'body.destination.url'],
  ['rejects a url that is not a URL', edit((b) => (b.destination.url = 'not a url')), 'body.destination.url'],
  ['rejects an ftp url', edit((b) => (b.destination.url = 'ftp://example.com/hook')), 'body.destination.url'],
  ['rejects a javascript: url', edit((b) => (b.destination.url = 'javascript:alert(1)')), 'body.destination.url'],
  ['rejects a file: url', edit((b) => (b.destination.url = 'file:///etc/passwd')), 'body.destination.url'],
  ['rejects a url longer than 2048 characters', edit((b) => (b.destination.url = `http://127.0.0.1/${'a'.repeat(2032)}`)), 'body.destination.url'],
  ['rejects a url that is not a string', edit((b) => (b.destination.url = 1)), 'body.destination.url'],
  ['rejects the method GET', edit((b) => (b.destination.method = 'GET')), 'body.destination.method'],
  ['rejects a lower-case method', edit((b) => (b.destination.method = 'post')), 'body.destination.method'],
  ['rejects the method OPTIONS', edit((b) => (b.destination.method = 'OPTIONS')), 'body.destination.method'],
  ['rejects a timeout_ms under 100', edit((b) => (b.destination.timeout_ms = 99)), 'body.destination.timeout_ms'],
  ['rejects a timeout_ms over 60000', edit((b) => (b.destination.timeout_ms = 60_001)), 'body.destination.timeout_ms'],
  ['rejects a fractional timeout_ms', edit((b) => (b.destination.timeout_ms = 1000.5)), 'body.destination.timeout_ms'],
  ['rejects a timeout_ms given as a string', edit((b) => (b.destination.timeout_ms = '1000')), 'body.destination.timeout_ms'],
  // destination.headers
  ['rejects more than 50 destination headers', headers(manyHeaders(51)), 'body.destination.headers'],
  ['rejects a destination header name longer than 256 characters', headers({ [`X-${'n'.repeat(255)}`]: 'v' }), 'body.destination.headers'],
  ['rejects a destination header value longer than 8 KiB', headers({ 'X-Big': 'v'.repeat(8193) }), 'body.destination.headers.X-Big'],
  ['rejects a destination header named Host', headers({ Host: 'evil.example' }), 'body.destination.headers.Host'],
  ['rejects a destination header named host in lower case', headers({ host: 'evil.example' }), 'body.destination.headers.host'],
  ['rejects a destination header named Content-Length', headers({ 'Content-Length': '1' }), 'body.destination.headers.Content-Length'],
  ['rejects a destination header named Transfer-Encoding', headers({ 'Transfer-Encoding': 'chunked' }), 'body.destination.headers.Transfer-Encoding'],
  ['rejects a destination header named Connection', headers({ Connection: 'close' }), 'body.destination.headers.Connection'],
  ['rejects a destination header named webhook-id', headers({ 'webhook-id': 'x' }), 'body.destination.headers.webhook-id'],
  ['rejects a destination header named Webhook-Signature', headers({ 'Webhook-Signature': 'v1,x' }), 'body.destination.headers.Webhook-Signature'],
  ['rejects a CR in a destination header value', headers({ 'X-A': 'a\rb' }), 'body.destination.headers.X-A'],
  ['rejects a LF in a destination header value', headers({ 'X-A': 'a\nb' }), 'body.destination.headers.X-A'],
  ['rejects a header injection through CRLF', headers({ 'X-A': 'a\r\nX-Injected: 1' }), 'body.destination.headers.X-A'],
  ['rejects a NUL in a destination header value', headers({ 'X-A': 'a\u0000b' }), 'body.destination.headers.X-A'],
  ['rejects a destination header name with a space', headers({ 'X Trace': 'v' }), 'body.destination.headers'],
  ['rejects a destination header name with a colon', headers({ 'X-Trace:': 'v' }), 'body.destination.headers'],
  ['rejects a destination header value that is not a string', headers({ 'X-N': 1 }), 'body.destination.headers.X-N'],
  ['rejects destination headers given as an array', headers(['X-A: b'] as never), 'body.destination.headers'],
  // retry
  ['rejects retry.max_attempts 0', edit((b) => (b.retry.max_attempts = 0)), 'body.retry.max_attempts'],
  ['rejects retry.max_attempts over 50', edit((b) => (b.retry.max_attempts = 51)), 'body.retry.max_attempts'],
  ['rejects a fractional retry.max_attempts', edit((b) => (b.retry.max_attempts = 2.5)), 'body.retry.max_attempts'],
  ['rejects a negative retry.base_delay_ms', edit((b) => (b.retry.base_delay_ms = -1)), 'body.retry.base_delay_ms'],
  ['rejects retry.max_delay_ms over 24 hours', edit((b) => (b.retry.max_delay_ms = 86_400_001)), 'body.retry.max_delay_ms'],
  [
    'rejects retry.max_delay_ms smaller than base_delay_ms',
    edit((b) => (b.retry = { max_attempts: 3, base_delay_ms: 5000, max_delay_ms: 4999 })),
    'body.retry.max_delay_ms',
  ],
  // rate_limit
  ['rejects rate_limit.rps 0', edit((b) => (b.rate_limit.rps = 0)), 'body.rate_limit.rps'],
  ['rejects a negative rate_limit.rps', edit((b) => (b.rate_limit.rps = -5)), 'body.rate_limit.rps'],
  ['rejects rate_limit.rps over 10000', edit((b) => (b.rate_limit.rps = 10_001)), 'body.rate_limit.rps'],
  ['rejects a rate_limit without rps', edit((b) => drop(b.rate_limit, 'rps')), 'body.rate_limit.rps'],
  ['rejects rate_limit.burst 0', edit((b) => (b.rate_limit.burst = 0)), 'body.rate_limit.burst'],
  ['rejects a fractional rate_limit.burst', edit((b) => (b.rate_limit.burst = 1.5)), 'body.rate_limit.burst'],
  // run_at, delay_ms
  ['rejects a run_at that is not RFC 3339', edit((b) => ((b.run_at = 'tomorrow'), drop(b, 'delay_ms'))), 'body.run_at'],
  ['rejects a run_at without a time', edit((b) => ((b.run_at = '2030-01-01'), drop(b, 'delay_ms'))), 'body.run_at'],
  ['rejects a run_at without an offset', edit((b) => ((b.run_at = '2030-01-01T00:00:00'), drop(b, 'delay_ms'))), 'body.run_at'],
  ['rejects a run_at given as epoch milliseconds', edit((b) => ((b.run_at = 1_900_000_000_000), drop(b, 'delay_ms'))), 'body.run_at'],
  ['rejects a negative delay_ms', edit((b) => (b.delay_ms = -1)), 'body.delay_ms'],
  ['rejects a fractional delay_ms', edit((b) => (b.delay_ms = 1.5)), 'body.delay_ms'],
  ['rejects run_at and delay_ms together', edit((b) => (b.run_at = '2030-01-01T00:00:00Z')), 'body.delay_ms'],
  // dedupe_key
  ['rejects an empty dedupe_key', edit((b) => (b.dedupe_key = '')), 'body.dedupe_key'],
  ['rejects a dedupe_key longer than 255 characters', edit((b) => (b.dedupe_key = 'k'.repeat(256))), 'body.dedupe_key'],
  // unknown fields
  ['rejects an unknown top-level field, naming it', edit((b) => (b.priority = 'high')), 'body.priority'],
  ['rejects a typo of a known field, naming it', edit((b) => ((b.tenantId = b.tenant_id), drop(b, 'tenant_id'))), 'body.tenantId'],
  ['rejects an unknown field inside destination, naming it', edit((b) => (b.destination.verb = 'POST')), 'body.destination.verb'],
  ['rejects an unknown field inside retry, naming it', edit((b) => (b.retry.max_attemps = 3)), 'body.retry.max_attemps'],
  ['rejects an unknown field inside rate_limit, naming it', edit((b) => (b.rate_limit.per_second = 3)), 'body.rate_limit.per_second'],
  ['rejects a client-chosen id', edit((b) => (b.id = '0190a0a0-0000-7000-8000-000000000000')), 'body.id'],
  ['rejects a client-chosen status', edit((b) => (b.status = 'success')), 'body.status'],
];

describe('POST /v1/jobs validates every field and writes nothing when one is bad', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc?.cleanup();
  });

  for (const [rule, body, field] of CASES) {
    it(rule, async () => {
      const res = await svc.post('/v1/jobs', body());
      const err = await expectError(res, 422, 'validation_failed');
      assertNames(err, field);
      for (const f of err.details?.fields ?? []) {
        assert.equal(typeof f.message, 'string');
        assert.ok(f.message.length > 0);
      }
      await assertNoJobs(svc);
    });
  }

  it('names every bad field of a body with three bad fields', async () => {
    const b = valid() as Body;
    b.tenant_id = 'bad tenant!';
    b.destination.url = 'ftp://example.com';
    b.retry.max_attempts = 0;
    const err = await expectError(await svc.post('/v1/jobs', b), 422, 'validation_failed');
    for (const f of ['body.tenant_id', 'body.destination.url', 'body.retry.max_attempts']) assertNames(err, f);
    await assertNoJobs(svc);
  });

  it('names every bad field across kinds of rule at once', async () => {
    const b = valid() as Body;
    b.type = '';
    b.payload = undefined;
    b.destination.method = 'GET';
    b.destination.headers = { Host: 'x', 'X-A': 'a\nb' };
    b.retry = { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 5 };
    b.rate_limit.rps = 0;
    b.run_at = '2030-01-01T00:00:00Z';
    b.dedupe_key = '';
    b.surprise = true;
    const err = await expectError(await svc.post('/v1/jobs', b), 422, 'validation_failed');
    const expected = [
      'body.type',
      'body.payload',
      'body.destination.method',
      'body.destination.headers.Host',
      'body.destination.headers.X-A',
      'body.retry.max_delay_ms',
      'body.rate_limit.rps',
      'body.delay_ms',
      'body.dedupe_key',
      'body.surprise',
    ];
    for (const f of expected) assertNames(err, f);
    assert.ok(fieldsOf(err).length >= expected.length);
    await assertNoJobs(svc);
  });

  it('names a cross-field rule even when a sibling field also fails', async () => {
    const b = valid() as Body;
    b.retry = { max_attempts: 0, base_delay_ms: 5000, max_delay_ms: 10 };
    b.destination.headers = { Host: 'x', 'Bad Name': 'v' };
    const err = await expectError(await svc.post('/v1/jobs', b), 422, 'validation_failed');
    for (const f of ['body.retry.max_attempts', 'body.retry.max_delay_ms', 'body.destination.headers.Host', 'body.destination.headers.Bad Name']) {
      assertNames(err, f);
    }
    await assertNoJobs(svc);
  });

  it('names each of several unknown fields', async () => {
    const b = valid() as Body;
    b.foo = 1;
    b.bar = 2;
    b.destination.baz = 3;
    const err = await expectError(await svc.post('/v1/jobs', b), 422, 'validation_failed');
    for (const f of ['body.foo', 'body.bar', 'body.destination.baz']) assertNames(err, f);
    await assertNoJobs(svc);
  });

  it('says in the message which fields are bad', async () => {
    const b = valid() as Body;
    b.destination.timeout_ms = 5;
    const err = await expectError(await svc.post('/v1/jobs', b), 422, 'validation_failed');
    assert.match(err.message, /destination\.timeout_ms/);
  });
});

describe('POST /v1/jobs accepts every value at the edge of a rule', () => {
  let svc: TestService;
  before(async () => {
    // these bodies differ only in settings outside the content hash: no deduplication here
    svc = await startTestService({ DEDUPE_WINDOW_SECONDS: '0' });
  });
  after(async () => {
    await svc?.cleanup();
  });

  const accepts: [string, () => unknown][] = [
    ['accepts a tenant_id of 128 characters of A-Z a-z 0-9 . _ : -', edit((b) => (b.tenant_id = `Az09._:-${'x'.repeat(120)}`))],
    ['accepts a type of 128 characters', edit((b) => (b.type = 'y'.repeat(128)))],
    ['accepts a url of exactly 2048 characters', edit((b) => (b.destination.url = `http://127.0.0.1/${'a'.repeat(2031)}`))],
    ['accepts an https url', edit((b) => (b.destination.url = 'https://127.0.0.1:9/hook'))],
    ['accepts the methods PUT and DELETE', edit((b) => (b.destination.method = 'DELETE'))],
    ['accepts timeout_ms 100', edit((b) => (b.destination.timeout_ms = 100))],
    ['accepts timeout_ms 60000', edit((b) => (b.destination.timeout_ms = 60_000))],
    ['accepts 50 destination headers', headers(manyHeaders(50))],
    ['accepts a destination header name of 256 characters', headers({ [`X-${'n'.repeat(254)}`]: 'v' })],
    ['accepts a destination header value of 8 KiB', headers({ 'X-Big': 'v'.repeat(8192) })],
    ['accepts a header whose name only contains "webhook"', headers({ 'X-Webhook-Source': 'shop' })],
    ['accepts a tab in a destination header value', headers({ 'X-Tab': 'a\tb' })],
    ['accepts retry.max_attempts 1 and 50', edit((b) => (b.retry.max_attempts = 50))],
    ['accepts max_delay_ms equal to base_delay_ms', edit((b) => (b.retry = { max_attempts: 2, base_delay_ms: 700, max_delay_ms: 700 }))],
    ['accepts max_delay_ms of 24 hours', edit((b) => (b.retry.max_delay_ms = 86_400_000))],
    ['accepts rate_limit.rps 10000 and burst 1', edit((b) => (b.rate_limit = { rps: 10_000, burst: 1 }))],
    ['accepts a fractional rate_limit.rps', edit((b) => (b.rate_limit = { rps: 0.1, burst: 1 }))],
    ['accepts rate_limit null', edit((b) => (b.rate_limit = null as never))],
    ['accepts a dedupe_key of 255 characters', edit((b) => (b.dedupe_key = 'k'.repeat(255)))],
  ];
  for (const [rule, body] of accepts) {
    it(rule, async () => {
      const job = await createJob(svc, body());
      assertJobShape(job);
    });
  }

  it('fills in burst when a rate_limit gives only rps', async () => {
    const job = await createJob(svc, edit((b) => (b.rate_limit = { rps: 2.5 }))());
    assert.equal(job.rate_limit?.rps, 2.5);
    assert.ok(Number.isInteger(job.rate_limit?.burst) && (job.rate_limit?.burst ?? 0) >= 1);
  });
});

describe('POST /v1/jobs refuses destinations the SSRF guard does not allow', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ ALLOW_PRIVATE_DESTINATIONS: 'false' });
  });
  after(async () => {
    await svc?.cleanup();
  });

  for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/', 'http://[::1]/', 'http://2130706433/']) {
    it(`answers 422 destination_not_allowed for ${url}, naming destination.url`, async () => {
      const b = valid() as Body;
      b.destination.url = url;
      const err = await expectError(await svc.post('/v1/jobs', b), 422, 'destination_not_allowed');
      assertNames(err, 'body.destination.url');
      await assertNoJobs(svc);
    });
  }
});
