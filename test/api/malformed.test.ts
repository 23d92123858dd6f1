// Bodies that never reach validation: the wrong media type (415), bytes that are not a JSON object
// (400), and sizes over the limits (413). Each is refused with its code and writes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { assertJobShape, assertNoJobs, createJob, expectError, LATER } from './helpers.js';

const MAX_PAYLOAD = 1000;
/** fastify's body limit: MAX_PAYLOAD_BYTES plus 512 KiB for the envelope (src/api/server.ts). */
const BODY_LIMIT = MAX_PAYLOAD + 512 * 1024;
const URL_OK = 'http://127.0.0.1:9/hook';

function raw(svc: TestService, body: RequestInit['body'] | undefined, contentType: string | null = 'application/json', extra: RequestInit = {}) {
  const headers: Record<string, string> = {};
  if (contentType !== null) headers['content-type'] = contentType;
  return svc.request('/v1/jobs', { method: 'POST', headers, body, ...extra });
}

/** JSON text of a valid body whose payload nests `depth` levels, so the whole body nests depth + 1. */
function nested(depth: number): string {
  const payload = '['.repeat(depth) + ']'.repeat(depth);
  return `{"tenant_id":"acme","type":"t","payload":${payload},"destination":{"url":"${URL_OK}"},"delay_ms":86400000}`;
}

describe('POST /v1/jobs refuses bodies that are not a JSON object, and writes nothing', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD) });
  });
  after(async () => {
    await svc?.cleanup();
  });

  const json = JSON.stringify(jobBody(URL_OK, LATER));

  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx']) {
    it(`answers 415 unsupported_media_type to a body sent as ${type}`, async () => {
      await expectError(await raw(svc, json, type), 415, 'unsupported_media_type');
      await assertNoJobs(svc);
    });
  }

  it('answers 415 unsupported_media_type to a body without a Content-Type', async () => {
    await expectError(await raw(svc, new TextEncoder().encode(json), null), 415, 'unsupported_media_type');
    await assertNoJobs(svc);
  });

  const bad400: [string, RequestInit['body'] | undefined][] = [
    ['malformed JSON', '{"tenant_id": "acme", '],
    ['JSON with trailing garbage', `${json}x`],
    ['JSON with single quotes', "{'tenant_id': 'acme'}"],
    ['an empty body', undefined],
    ['a body of zero bytes', ''],
    ['a body of whitespace', '  \n\t '],
    ['a JSON array', `[${json}]`],
    ['a JSON string', '"hello"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['invalid UTF-8 bytes', new Uint8Array([...new TextEncoder().encode('{"tenant_id":"ac'), 0xff, 0xfe, ...new TextEncoder().encode('me"}')])],
    ['an overlong UTF-8 encoding', new Uint8Array([...new TextEncoder().encode('{"type":"'), 0xc0, 0xaf, ...new TextEncoder().encode('"}')])],
    ['a lone UTF-8 continuation byte in the payload', new Uint8Array([...new TextEncoder().encode(json.slice(0, -1)), ...new TextEncoder().encode(',"x":"'), 0x80, 0x22, 0x7d])],
    ['nesting deeper than 64 levels', nested(64)],
    ['nesting far deeper than 64 levels', nested(100_000)],
    ['a __proto__ key', `{"__proto__":{"polluted":true},${json.slice(1)}`],
  ];
  for (const [what, body] of bad400) {
    it(`answers 400 validation_failed to ${what}`, async () => {
      const err = await expectError(await raw(svc, body), 400, 'validation_failed');
      assert.ok(err.message.length > 0);
      await assertNoJobs(svc);
    });
  }

  it('does not pollute Object.prototype through __proto__', async () => {
    await raw(svc, `{"__proto__":{"polluted":true},${json.slice(1)}`);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('answers 413 payload_too_large to a payload over MAX_PAYLOAD_BYTES', async () => {
    const body = jobBody(URL_OK, { payload: { blob: 'x'.repeat(MAX_PAYLOAD) }, ...LATER });
    const err = await expectError(await svc.post('/v1/jobs', body), 413, 'payload_too_large');
    assert.match(err.message, new RegExp(String(MAX_PAYLOAD)));
    await assertNoJobs(svc);
  });

  it('measures the payload in encoded bytes, not characters', async () => {
    // 600 characters, 1202 bytes of UTF-8 once encoded as JSON
    const body = jobBody(URL_OK, { payload: 'é'.repeat(600), ...LATER });
    await expectError(await svc.post('/v1/jobs', body), 413, 'payload_too_large');
    await assertNoJobs(svc);
  });

  it('measures the payload as JSON encodes it, escapes included', async () => {
    // 500 newlines are 500 characters but 1002 bytes of JSON ("\n" is two bytes)
    const body = jobBody(URL_OK, { payload: '\n'.repeat(500), ...LATER });
    await expectError(await svc.post('/v1/jobs', body), 413, 'payload_too_large');
    await assertNoJobs(svc);
  });

  it('answers 413 to a body over the body limit before parsing it', async () => {
    // not JSON at all: a parser would answer 400; the limit answers first
    const res = await raw(svc, 'x'.repeat(BODY_LIMIT + 1));
    await expectError(res, 413, 'payload_too_large');
    await assertNoJobs(svc);
  });

  it('answers 413 to a chunked body that grows over the body limit', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > BODY_LIMIT + chunk.length) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    let res: Response | null = null;
    try {
      res = await raw(svc, stream, 'application/json', { duplex: 'half' } as RequestInit);
    } catch {
      // the server may close the connection while the client is still sending: that refuses it too
    }
    if (res) await expectError(res, 413, 'payload_too_large');
    await assertNoJobs(svc);
  });

  it('answers 400 to an Idempotency-Key header that is empty or longer than 255 characters', async () => {
    for (const key of ['', 'k'.repeat(256)]) {
      const res = await svc.post('/v1/jobs', jobBody(URL_OK, LATER), { 'idempotency-key': key });
      const err = await expectError(res, 400, 'validation_failed');
      assert.ok(err.details?.fields?.some((f) => f.field === 'headers.idempotency-key'), JSON.stringify(err));
      await assertNoJobs(svc);
    }
  });
});

describe('POST /v1/jobs accepts a JSON object at the limits', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD), DEDUPE_WINDOW_SECONDS: '0' });
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('accepts application/json with a charset parameter', async () => {
    const res = await raw(svc, JSON.stringify(jobBody(URL_OK, LATER)), 'application/json; charset=utf-8');
    assert.equal(res.status, 201, await res.text());
  });

  it('accepts nesting of exactly 64 levels', async () => {
    const res = await raw(svc, nested(63));
    assert.equal(res.status, 201, await res.text());
  });

  it('accepts a payload of exactly MAX_PAYLOAD_BYTES', async () => {
    const payload = 'x'.repeat(MAX_PAYLOAD - 2); // two quotes make it MAX_PAYLOAD bytes of JSON
    const job = await createJob(svc, jobBody(URL_OK, { payload, ...LATER }));
    assertJobShape(job);
    assert.equal(job.payload, payload);
  });

  it('accepts multi-byte UTF-8 text and stores it unchanged', async () => {
    const payload = { text: 'héllo wörld ✓ 日本 🎉' };
    const job = await createJob(svc, jobBody(URL_OK, { payload, ...LATER }));
    assert.deepEqual(job.payload, payload);
  });

  it('accepts a body that starts with a UTF-8 byte order mark', async () => {
    const res = await raw(svc, `\uFEFF${JSON.stringify(jobBody(URL_OK, LATER))}`);
    assert.equal(res.status, 201, await res.text());
  });
});
