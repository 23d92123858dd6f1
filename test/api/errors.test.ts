// Every error the API gives is JSON {"error": {"code", "message", "details"?}} with a stable code,
// whoever raises it: a route, the router, the body parser or Node's HTTP parser. Plus health checks.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { expectError, LATER } from './helpers.js';

const URL_OK = 'http://127.0.0.1:9/hook';

/** Sends raw bytes to the service and returns what comes back before it closes the connection. */
function rawHttp(svc: TestService, text: string, timeoutMs = 5000): Promise<string> {
  const { port, hostname } = new URL(svc.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer in time'));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    socket.end(text);
  });
}

function parseRaw(answer: string): { status: number; contentType: string; body: { error: { code: string; message: string } } } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  const status = Number(head.split(' ')[1]);
  const contentType = /content-type: *([^\r\n]+)/i.exec(head)?.[1] ?? '';
  return { status, contentType, body: JSON.parse(body) as { error: { code: string; message: string } } };
}

describe('error answers', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('answers an unknown route with 404 not_found as JSON', async () => {
    const err = await expectError(await svc.get('/v2/jobs'), 404, 'not_found');
    assert.match(err.message, /\/v2\/jobs/);
  });

  it('answers the root path with 404 not_found as JSON', async () => {
    await expectError(await svc.get('/'), 404, 'not_found');
  });

  it('answers a method a route does not have with 404 not_found as JSON', async () => {
    await expectError(await svc.request('/v1/jobs', { method: 'DELETE' }), 404, 'not_found');
    await expectError(await svc.request('/v1/jobs/01900000-0000-7000-8000-000000000000', { method: 'PUT' }), 404, 'not_found');
  });

  it('answers a command on an unknown route under a job with 404 not_found', async () => {
    await expectError(await svc.post('/v1/jobs/01900000-0000-7000-8000-000000000000/explode', {}), 404, 'not_found');
  });

  it('answers a path parameter longer than the router allows with 404 not_found as JSON', async () => {
    await expectError(await svc.get(`/v1/jobs/${'a'.repeat(500)}`), 404, 'not_found');
    await expectError(await svc.post(`/v1/jobs/${'a'.repeat(500)}/cancel`, {}), 404, 'not_found');
  });

  it('answers a path with bad percent-encoding with 400 validation_failed as JSON', async () => {
    await expectError(await svc.get('/v1/jobs/%E0%A4%A'), 400, 'validation_failed');
  });

  it('answers a malformed HTTP request with 400 validation_failed as JSON', async () => {
    const answer = parseRaw(await rawHttp(svc, 'GET /v1/jobs HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n'));
    assert.equal(answer.status, 400);
    assert.match(answer.contentType, /^application\/json/);
    assert.equal(answer.body.error.code, 'validation_failed');
  });

  it('answers request headers over the size limit with 431 as JSON', async () => {
    const answer = parseRaw(await rawHttp(svc, `GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    assert.equal(answer.status, 431);
    assert.equal(answer.body.error.code, 'validation_failed');
  });

  it('answers a conflicting Content-Length with 400 as JSON', async () => {
    const body = JSON.stringify(jobBody(URL_OK, LATER));
    const answer = parseRaw(
      await rawHttp(svc, `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
    );
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'validation_failed');
  });

  it('gives details only as an object when it gives them', async () => {
    const err = await expectError(await svc.post('/v1/jobs', { tenant_id: '' }), 422, 'validation_failed');
    assert.equal(typeof err.details, 'object');
    assert.ok(Array.isArray(err.details?.fields));
  });

  it('answers every error kind in the one shape', async () => {
    const id = '01900000-0000-7000-8000-000000000000';
    const cases: [Promise<Response>, number, string][] = [
      [svc.get('/nope'), 404, 'not_found'],
      [svc.get(`/v1/jobs/${id}`), 404, 'not_found'],
      [svc.get(`/v1/jobs/${id}/attempts`), 404, 'not_found'],
      [svc.post(`/v1/jobs/${id}/cancel`, {}), 404, 'not_found'],
      [svc.post(`/v1/jobs/${id}/retry`, {}), 404, 'not_found'],
      [svc.get('/v1/jobs?limit=0'), 400, 'validation_failed'],
      [svc.get('/v1/dlq?limit=1001'), 400, 'validation_failed'],
      [svc.post('/v1/jobs', '{'), 400, 'validation_failed'],
      [svc.post('/v1/jobs', {}), 422, 'validation_failed'],
      [svc.request('/v1/jobs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }), 415, 'unsupported_media_type'],
    ];
    for (const [res, status, code] of cases) await expectError(await res, status, code);
  });

  it('answers a command with an empty body or none at all', async () => {
    const id = '01900000-0000-7000-8000-000000000000';
    await expectError(await svc.request(`/v1/jobs/${id}/cancel`, { method: 'POST' }), 404, 'not_found');
  });
});

describe('health', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('answers /healthz with 200', async () => {
    const res = await svc.get('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('answers /readyz with 200 when ready', async () => {
    const res = await svc.get('/readyz');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; checks: Record<string, string> };
    assert.equal(body.status, 'ready');
    assert.equal(body.checks.store, 'ok');
  });

  it('answers /metrics with Prometheus text', async () => {
    const res = await svc.get('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await res.text(), /^# (HELP|TYPE) /m);
  });

  it('answers /readyz with 503 and refuses new jobs with 503 overloaded while draining', async () => {
    svc.lifecycle.phase = 'draining';
    try {
      const ready = await svc.get('/readyz');
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { status: string }).status, 'not_ready');
      const refused = await svc.post('/v1/jobs', jobBody(URL_OK, LATER));
      assert.equal(refused.headers.get('retry-after'), '5', 'says when to come back');
      await expectError(refused, 503, 'overloaded');
      // reads still answer
      assert.equal((await svc.get('/v1/jobs')).status, 200);
      assert.equal((await svc.get('/healthz')).status, 200);
    } finally {
      svc.lifecycle.phase = 'ready';
    }
    const page = (await (await svc.get('/v1/jobs')).json()) as { data: unknown[] };
    assert.deepEqual(page.data, [], 'the refused job was not written');
  });
});
