// Hostile input over real HTTP: oversized and slow bodies, deep or broken JSON, header floods, path
// tricks and out-of-range numbers. Each is answered with a 4xx and a JSON error code (or the
// connection is closed, for a client too slow to finish its request), nothing is stored, and the
// service keeps serving.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { expectError, expectHealthy, jobCount, rawRequest } from './helpers.js';

const MAX_PAYLOAD_BYTES = 4096;
// server.ts lets the envelope around the payload add 512 KiB
const BODY_LIMIT = MAX_PAYLOAD_BYTES + 512 * 1024;
const REQUEST_TIMEOUT_MS = 1000;
const DEST = 'http://127.0.0.1:9/hook';
const LATER = { delay_ms: 86_400_000 };

function postHead(length: number | 'chunked', extra = ''): string {
  const framing = length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
  return `POST /v1/jobs HTTP/1.1\r\nHost: pulsegate\r\nContent-Type: application/json\r\n${framing}\r\n${extra}Connection: close\r\n\r\n`;
}

function errorCode(json: unknown): string | undefined {
  return (json as { error?: { code?: string } } | null)?.error?.code;
}

describe('hostile input', () => {
  let svc: TestService;
  let stored: number;

  before(async () => {
    svc = await startTestService({ MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES), REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
  });
  beforeEach(async () => {
    stored = await jobCount(svc);
  });
  after(async () => {
    await svc.cleanup();
  });

  /** Nothing was stored by the case, and /healthz still answers. */
  async function stillClean(): Promise<void> {
    assert.equal(await jobCount(svc), stored, 'nothing stored');
    await expectHealthy(svc);
  }

  describe('body size', () => {
    it('answers a Content-Length far over the limit with 413 before the body is sent', async () => {
      const answer = await rawRequest(svc.url, [postHead(100 * 1024 * 1024), '{"tenant_id":"a",']);
      assert.equal(answer.status, 413, answer.text);
      assert.equal(errorCode(answer.json), 'payload_too_large');
      assert.ok(answer.ms < 2000, `answered in ${answer.ms} ms, having received 17 of 104857600 bytes`);
      await stillClean();
    });

    it('stops reading a chunked body at the limit with 413', async () => {
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
      const frames = Array.from({ length: Math.ceil(BODY_LIMIT / chunk.length) + 4 }, () => frame);
      const answer = await rawRequest(svc.url, [postHead('chunked'), `6\r\n{"x":"\r\n`, ...frames]);
      assert.equal(answer.status, 413, answer.text.slice(0, 300));
      assert.equal(errorCode(answer.json), 'payload_too_large');
      await stillClean();
    });

    it('answers a payload over MAX_PAYLOAD_BYTES inside an acceptable body with 413', async () => {
      const res = await svc.post('/v1/jobs', jobBody(DEST, { payload: { blob: 'x'.repeat(MAX_PAYLOAD_BYTES) }, ...LATER }));
      await expectError(res, 413, 'payload_too_large');
      await stillClean();
    });
  });

  describe('malformed JSON', () => {
    const cases: [string, string | Buffer, number][] = [
      ['nesting 65 levels deep', `{"tenant_id":"a","payload":${'['.repeat(64)}${']'.repeat(64)}}`, 400],
      ['nesting 200,000 levels deep', `{"payload":${'['.repeat(200_000)}${']'.repeat(200_000)}}`, 400],
      ['invalid UTF-8 in a string', Buffer.concat([Buffer.from('{"tenant_id":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]), 400],
      ['an overlong UTF-8 encoding of "/"', Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), 400],
      ['a UTF-16 body', Buffer.from('{"tenant_id":"a"}', 'utf16le'), 400],
      ['truncated JSON', '{"tenant_id":"a","payload":{', 400],
      ['trailing garbage', '{"tenant_id":"a"} {}', 400],
      ['an empty body', '', 400],
      ['whitespace only', ' \r\n\t ', 400],
      ['a top-level array', '[{"tenant_id":"a"}]', 400],
      ['a top-level string', '"job"', 400],
      ['a top-level number', '42', 400],
      ['null', 'null', 400],
      ['true', 'true', 400],
      ['a __proto__ key', `{"__proto__":{"admin":true},"tenant_id":"a"}`, 400],
      ['NaN', '{"delay_ms":NaN}', 400],
      ['a single-quoted string', "{'tenant_id':'a'}", 400],
    ];
    for (const [name, body, status] of cases) {
      it(`answers ${name} with ${status} validation_failed`, async () => {
        const res = await svc.request('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await expectError(res, status, 'validation_failed');
        await stillClean();
      });
    }

    it('answers a body that is not JSON with 415', async () => {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const res = await svc.request('/v1/jobs', { method: 'POST', headers: { 'content-type': type }, body: 'tenant_id=a' });
        await expectError(res, 415, 'unsupported_media_type');
      }
      await stillClean();
    });

    it('survives a large, flat JSON body of the wrong shape', async () => {
      const body = JSON.stringify({ ...jobBody(DEST), payload: Array.from({ length: 100_000 }, () => null), type: 7 });
      assert.ok(body.length < BODY_LIMIT);
      await expectError(await svc.post('/v1/jobs', body), 422, 'validation_failed');
      await stillClean();
    });

    it('keeps the error answer small for a body with thousands of unknown fields', async () => {
      const body: Record<string, unknown> = jobBody(DEST);
      for (let i = 0; i < 20_000; i++) body[`k${i}`] = 1;
      const res = await svc.post('/v1/jobs', body);
      const text = await res.text();
      assert.equal(res.status, 422);
      assert.ok(text.length < 64 * 1024, `${text.length} bytes of error`);
    });
  });

  describe('numbers out of range', () => {
    const cases: [string, Record<string, unknown> | string][] = [
      ['delay_ms 1e309 (Infinity once parsed)', `{"tenant_id":"a","type":"t","payload":{},"destination":{"url":"${DEST}"},"delay_ms":1e309}`],
      ['delay_ms -1', jobBody(DEST, { delay_ms: -1 })],
      ['delay_ms 2^53+1', `{"tenant_id":"a","type":"t","payload":{},"destination":{"url":"${DEST}"},"delay_ms":9007199254740993}`],
      ['delay_ms 1.5', jobBody(DEST, { delay_ms: 1.5 })],
      ['timeout_ms -1e309', `{"tenant_id":"a","type":"t","payload":{},"destination":{"url":"${DEST}","timeout_ms":-1e309}}`],
      ['max_attempts 2^53+1', `{"tenant_id":"a","type":"t","payload":{},"destination":{"url":"${DEST}"},"retry":{"max_attempts":9007199254740993}}`],
      ['max_attempts 0', jobBody(DEST, { retry: { max_attempts: 0 } })],
      ['base_delay_ms 1e20', jobBody(DEST, { retry: { base_delay_ms: 1e20 } })],
      ['rps 1e309', `{"tenant_id":"a","type":"t","payload":{},"destination":{"url":"${DEST}"},"rate_limit":{"rps":1e309}}`],
      ['rps -0.5', jobBody(DEST, { rate_limit: { rps: -0.5 } })],
      ['burst 1e-300', jobBody(DEST, { rate_limit: { rps: 1, burst: 1e-300 } })],
      ['a number as tenant_id', jobBody(DEST, { tenant_id: 12 })],
      ['run_at in year 275760+', jobBody(DEST, { run_at: '+275761-01-01T00:00:00Z' })],
      ['run_at without a time zone', jobBody(DEST, { run_at: '2026-01-01T00:00:00' })],
    ];
    for (const [name, body] of cases) {
      // a number past a double's range cannot be read at all (400); the rest break a field's rule (422)
      const status = name.includes('1e309') ? 400 : 422;
      it(`answers ${name} with ${status} validation_failed`, async () => {
        await expectError(await svc.post('/v1/jobs', body), status, 'validation_failed');
        await stillClean();
      });
    }

    it('refuses a payload number JSON cannot carry instead of storing it as null', async () => {
      const res = await svc.post('/v1/jobs', `{"tenant_id":"a","type":"t","payload":{"x":1e309},"destination":{"url":"${DEST}"},"delay_ms":86400000}`);
      assert.ok(res.status >= 400 && res.status < 500, `got ${res.status}`);
    });
  });

  describe('ids and paths', () => {
    const paths = [
      '/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd',
      '/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/v1/jobs/..%5c..%5cwindows%5cwin.ini',
      '/v1/jobs/01890000-0000-7000-8000-000000000000%00',
      '/v1/jobs/%00',
      "/v1/jobs/'%20OR%20'1'='1",
      '/v1/jobs/01890000-0000-7000-8000-000000000000%2F..%2F..',
      `/v1/jobs/${'a'.repeat(5000)}`,
      '/v1/jobs/%ZZ',
      '/v1/jobs/%C0%AF',
      '/v1/jobs/%F0%9F%92%A9/attempts',
      '/v1/jobs/../../../etc/passwd',
    ];
    for (const path of paths) {
      it(`answers GET ${path.slice(0, 60)} with a JSON 4xx, never a file`, async () => {
        const answer = await rawRequest(svc.url, [`GET ${path} HTTP/1.1\r\nHost: pulsegate\r\nConnection: close\r\n\r\n`]);
        assert.ok(answer.status !== null && answer.status >= 400 && answer.status < 500, answer.text.slice(0, 300));
        assert.ok(['not_found', 'validation_failed'].includes(errorCode(answer.json) ?? ''), answer.text.slice(0, 300));
        assert.ok(!answer.text.includes('root:'), 'no file content');
        await stillClean();
      });
    }

    it('answers cancel and retry of a traversal id with 404', async () => {
      for (const action of ['cancel', 'retry']) {
        const res = await svc.request(`/v1/jobs/..%2F..%2Fetc%2Fpasswd/${action}`, { method: 'POST' });
        await expectError(res, 404, 'not_found');
      }
      await stillClean();
    });
  });

  describe('header floods', () => {
    it('answers one huge header with 431 and keeps serving', async () => {
      const answer = await rawRequest(svc.url, [`GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`]);
      assert.equal(answer.status, 431, answer.text.slice(0, 200));
      assert.equal(errorCode(answer.json), 'validation_failed');
      await stillClean();
    });

    it('answers thousands of headers with 431 and keeps serving', async () => {
      const headers = Array.from({ length: 5000 }, (_, i) => `X-H${i}: v\r\n`).join('');
      const answer = await rawRequest(svc.url, [`GET /v1/jobs HTTP/1.1\r\nHost: x\r\n${headers}\r\n`]);
      assert.equal(answer.status, 431, answer.text.slice(0, 200));
      await stillClean();
    });

    it('answers a malformed request line or header with 400', async () => {
      for (const req of ['GET /v1/jobs HTTP/1.1\r\nHost x\r\n\r\n', 'FOO BAR BAZ QUX\r\n\r\n', 'GET /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n']) {
        const answer = await rawRequest(svc.url, [req]);
        assert.equal(answer.status, 400, JSON.stringify(req));
        assert.equal(errorCode(answer.json), 'validation_failed');
      }
      await stillClean();
    });

    it('keeps serving during a flood of oversized-header connections', async () => {
      const big = `GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`;
      const answers = await Promise.all(Array.from({ length: 50 }, () => rawRequest(svc.url, [big])));
      assert.ok(answers.every((a) => a.status === 431));
      await stillClean();
    });
  });

  describe('slow clients', () => {
    const bound = REQUEST_TIMEOUT_MS + 1500;

    it('closes a connection that sends headers and then nothing, within REQUEST_TIMEOUT_MS', async () => {
      const answer = await rawRequest(svc.url, [postHead(100).replace('Connection: close\r\n', '')], { timeoutMs: 10_000 });
      assert.ok(answer.closed, 'closed by the server');
      assert.ok(answer.ms < bound, `closed after ${answer.ms} ms`);
      assert.ok(answer.status === null || answer.status === 408, answer.text);
      await stillClean();
    });

    it('closes a connection that stops halfway through its headers, within REQUEST_TIMEOUT_MS', async () => {
      const answer = await rawRequest(svc.url, ['POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Ty'], { timeoutMs: 10_000 });
      assert.ok(answer.closed);
      assert.ok(answer.ms < bound, `closed after ${answer.ms} ms`);
      await stillClean();
    });

    it('closes a connection that sends nothing at all, within REQUEST_TIMEOUT_MS', async () => {
      const answer = await rawRequest(svc.url, [], { timeoutMs: 10_000 });
      assert.ok(answer.closed);
      assert.ok(answer.ms < bound, `closed after ${answer.ms} ms`);
    });

    it('keeps serving others while slow clients hold connections', async () => {
      const slow = Array.from({ length: 20 }, () => rawRequest(svc.url, [postHead(100)], { timeoutMs: 10_000 }));
      for (let i = 0; i < 5; i++) await expectHealthy(svc);
      await Promise.all(slow);
      await stillClean();
    });

    it(
      'ends a request that trickles its body a byte at a time once REQUEST_TIMEOUT_MS passes',
      async () => {
        const body = Array.from({ length: 40 }, () => ' ');
        const answer = await rawRequest(svc.url, [postHead(100), ...body], { gapMs: 100, timeoutMs: bound + 1000 });
        assert.ok(answer.closed && answer.ms < bound, `closed: ${answer.closed} after ${answer.ms} ms`);
      },
    );
  });
});
