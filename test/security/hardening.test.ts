// Regression tests for five findings of a hostile probe (black-box, over HTTP on loopback). Each case
// failed on the code before its fix:
//   1. a body of long digit runs made the overflow check backtrack (~300 steps per byte), stalling the loop;
//   2. a request refused before its body was read (no key) kept its connection, and Node read the
//      declared body to the end (14.5 GiB in 8 s);
//   3. rate_limit.rps of 1e-300 gave a wait of 1e303 ms that the store could not hold (an error every
//      15 s, forever);
//   4. (test/security/signing.test.ts) a tenant whose own secrets had expired got unsigned webhooks;
//   5. headers accepted but never sent, a __proto__ header dropped silently, a job's Content-Type
//      overriding application/json, numbers past 2^53 re-encoded, other charsets read as UTF-8.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { generateKey } from '../../src/auth/keys.js';
import { toNewJob } from '../../src/api/new-job.js';
import { createJobBodySchema } from '../../src/api/schemas.js';
import { MAX_WAIT_MS } from '../../src/domain/time.js';
import type { PulseEvent } from '../../src/observability/events.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { expectError, expectHealthy, flood, jobCount } from './helpers.js';

const LATER = { delay_ms: 86_400_000 };

describe('1. bodies of long digit runs', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ MAX_PAYLOAD_BYTES: String(1024 * 1024), DEDUPE_WINDOW_SECONDS: '0' });
  });
  after(() => svc.cleanup());

  /** A body whose payload string is ~780 KB of `unit` repeated. */
  function body(unit: string): string {
    const text = unit.repeat(Math.ceil(780_000 / unit.length));
    return JSON.stringify(jobBody('http://127.0.0.1:9/hook', { payload: { s: text }, ...LATER }));
  }

  async function fastestOf3(text: string): Promise<number> {
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const res = await svc.post('/v1/jobs', text);
      assert.equal(res.status, 201, (await res.text()).slice(0, 200));
      best = Math.min(best, performance.now() - t);
    }
    return best;
  }

  it('costs no more to parse than a body of letters the same size', async () => {
    const letters = await fastestOf3(body(`${'a'.repeat(299)} `));
    const digits = await fastestOf3(body(`${'1'.repeat(299)} `));
    // before the fix: ~270 ms against ~10 ms; both are one linear pass now
    assert.ok(digits < letters * 4 + 40, `digit runs took ${digits.toFixed(1)} ms, letters ${letters.toFixed(1)} ms`);
  });

  it('still refuses a number that overflows a double, in any spelling', async () => {
    for (const n of ['1e400', '-1E+309', '9'.repeat(400), `${'9'.repeat(310)}.5`]) {
      const text = JSON.stringify(jobBody('http://127.0.0.1:9/hook', { payload: { n: 0 }, ...LATER })).replace('"n":0', `"n":${n}`);
      await expectError(await svc.post('/v1/jobs', text), 400, 'validation_failed');
    }
    for (const n of ['1e-400', `0.${'0'.repeat(400)}1`, '1e308']) {
      const text = JSON.stringify(jobBody('http://127.0.0.1:9/hook', { payload: { n: 0 }, ...LATER })).replace('"n":0', `"n":${n}`);
      const res = await svc.post('/v1/jobs', text);
      assert.equal(res.status, 201, `${n.slice(0, 20)}: ${await res.text()}`);
    }
  });
});

describe('2. bodies sent with an early answer', () => {
  let svc: TestService;
  const key = generateKey().key;
  before(async () => {
    svc = await startTestService({ API_KEYS: `*:${key}`, REQUEST_TIMEOUT_MS: '60000' });
  });
  after(() => svc.cleanup());

  const post = 'POST /v1/jobs HTTP/1.1\r\nHost: pulsegate\r\nContent-Type: application/json\r\n';
  const cases: [string, string, boolean, number][] = [
    ['refuses a declared length over the limit before authentication, and closes', `${post}Content-Length: 53687091200\r\n\r\n`, false, 413],
    ['closes the connection after a 401 while a chunked body is still coming', `${post}Transfer-Encoding: chunked\r\n\r\n`, true, 401],
    ['closes after a 401 to a declared body over 64 KiB still unread', `${post}Content-Length: 400000\r\n\r\n`, false, 401],
    ['closes after answering /healthz when it was sent a chunked body', 'GET /healthz HTTP/1.1\r\nHost: pulsegate\r\nTransfer-Encoding: chunked\r\n\r\n', true, 200],
    ['closes after answering /metrics when it was sent a chunked body', 'GET /metrics HTTP/1.1\r\nHost: pulsegate\r\nTransfer-Encoding: chunked\r\n\r\n', true, 200],
  ];
  for (const [name, head, chunked, status] of cases) {
    it(name, async () => {
      const r = await flood(svc.url, head, chunked);
      assert.equal(r.status, status);
      assert.ok(r.closedByServer, `the connection stayed open while ${r.sentBytes} bytes were sent`);
    });
  }

  it('keeps the connection alive after a 401 to a small body', async () => {
    const body = JSON.stringify(jobBody('http://127.0.0.1:9/hook', LATER));
    const req = `POST /v1/jobs HTTP/1.1\r\nHost: pulsegate\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const text = await new Promise<string>((resolve, reject) => {
      const { port, hostname } = new URL(svc.url);
      const socket = connect(Number(port), hostname, () => socket.write(req + req));
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString('utf8');
        if (got.split('HTTP/1.1 401').length === 3) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      setTimeout(() => {
        socket.destroy();
        resolve(got);
      }, 3000);
    });
    assert.equal(text.split('HTTP/1.1 401').length, 3, 'both pipelined requests were answered on one connection');
    assert.doesNotMatch(text, /connection: close/i);
  });
});

describe('3. extreme numbers in numeric fields', () => {
  let svc: TestService;
  let rx: Receiver;
  const errors: PulseEvent[] = [];
  before(async () => {
    rx = await startReceiver();
    svc = await startTestService({ DEDUPE_WINDOW_SECONDS: '0' });
    svc.events.on((e) => {
      if (e.type === 'store.error') errors.push(e);
    });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  const extremes = [1e-300, 5e-324, -0, -1, 1e308, 0.5, Number.MAX_SAFE_INTEGER + 2];
  const fields: [string, (v: number) => Record<string, unknown>, (v: number) => boolean][] = [
    ['rate_limit.rps', (v) => ({ rate_limit: { rps: v } }), (v) => v >= 0.001 && v <= 10_000],
    ['rate_limit.burst', (v) => ({ rate_limit: { rps: 1, burst: v } }), (v) => Number.isInteger(v) && v >= 1 && v <= 100_000],
    ['retry.max_attempts', (v) => ({ retry: { max_attempts: v } }), (v) => Number.isInteger(v) && v >= 1 && v <= 50],
    ['retry.base_delay_ms', (v) => ({ retry: { base_delay_ms: v, max_delay_ms: 86_400_000 } }), (v) => Number.isInteger(v) && v >= 0 && v <= 86_400_000],
    ['retry.max_delay_ms', (v) => ({ retry: { base_delay_ms: 0, max_delay_ms: v } }), (v) => Number.isInteger(v) && v >= 0 && v <= 86_400_000],
    ['delay_ms', (v) => ({ delay_ms: v }), (v) => Number.isInteger(v) && v >= 0 && v <= 365 * 86_400_000],
  ];
  for (const [name, make, valid] of fields) {
    it(`answers every extreme ${name} with 201 only inside its documented range`, async () => {
      for (const v of extremes) {
        const extra = make(v);
        const res = await svc.post('/v1/jobs', jobBody('http://127.0.0.1:9/hook', { ...LATER, ...extra }));
        const text = await res.text();
        if (valid(v)) assert.equal(res.status, 201, `${name}=${v}: ${text}`);
        else assert.equal(res.status, 422, `${name}=${v}: ${text}`);
      }
    });
  }

  it('answers a timeout_ms outside 100..60000 with 422', async () => {
    for (const v of [0, 99, 60_001, 1e308, 5e-324]) {
      await expectError(await svc.post('/v1/jobs', jobBody('http://127.0.0.1:9/hook', { destination: { url: 'http://127.0.0.1:9/h', timeout_ms: v } })), 422, 'validation_failed');
    }
  });

  it('never computes a due time the store cannot hold, whatever a stored job says (a row older than the rps floor)', async () => {
    const now = Date.now();
    const body = createJobBodySchema.parse(jobBody(`${rx.url}/legacy`, { rate_limit: { rps: 1, burst: 1 } }));
    const jobs = [1, 2, 3].map(() => toNewJob(body, '{"legacy":true}', null, now, { dedupeWindowMs: 0, idempotencyTtlMs: 0 }));
    for (const j of jobs) j.rate_limit = { rps: 1e-300, burst: 1 };
    const out = await svc.store.createJobs(jobs, now);
    assert.ok(out.every((o) => o.kind === 'created'));
    svc.engine.notifyDue(now);
    await rx.waitFor(1, 5000);
    const db = new Database(svc.dbPath, { readonly: true });
    try {
      const rows = await eventually(async () => {
        const r = db.prepare(`SELECT id, status, due_at, lease_owner FROM jobs WHERE id IN (?, ?)`).all(jobs[1]!.id, jobs[2]!.id) as { status: string; due_at: number; lease_owner: string | null }[];
        return r.length === 2 && r.every((x) => x.lease_owner === null) ? r : null;
      }, 5000);
      for (const r of rows) {
        assert.equal(r.status, 'queued');
        assert.ok(Number.isSafeInteger(r.due_at) && r.due_at > now && r.due_at <= Date.now() + MAX_WAIT_MS, `due_at ${r.due_at}`);
      }
    } finally {
      db.close();
    }
    assert.deepEqual(errors, [], 'no store error');
    assert.equal(rx.requests.length, 1, 'one delivery: the others wait their turn at the floor rate');
  });
});

describe('5. what a job sends, and how its body is read', () => {
  let svc: TestService;
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
    svc = await startTestService();
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  async function deliver(extra: Record<string, unknown>, raw?: string) {
    const before = rx.requests.length;
    const res = raw === undefined ? await svc.post('/v1/jobs', jobBody(`${rx.url}/h`, extra)) : await svc.post('/v1/jobs', raw);
    const text = await res.text();
    assert.equal(res.status, 201, text);
    const job = JSON.parse(text) as { id: string };
    const received = await eventually(async () => rx.requests.slice(before).find((r) => r.headers['webhook-id'] === job.id), 5000);
    return { job, text, received };
  }

  it('refuses at creation every header it would not send', async () => {
    for (const name of ['Keep-Alive', 'Upgrade', 'TE', 'Trailer', 'Expect', 'Proxy-Connection', 'Host', 'Connection', 'Content-Length', 'Transfer-Encoding', 'Webhook-Signature']) {
      const stored = await jobCount(svc);
      const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/h`, { destination: { url: `${rx.url}/h`, headers: { [name]: 'x' } } }));
      const err = await expectError(res, 422, 'validation_failed');
      assert.match(err.message, new RegExp(`destination\\.headers\\.${name}`), err.message);
      assert.equal(await jobCount(svc), stored, `${name}: nothing stored`);
    }
  });

  it('refuses a header named __proto__ instead of dropping it', async () => {
    const raw = JSON.stringify(jobBody(`${rx.url}/h`, { destination: { url: `${rx.url}/h`, headers: { x: '1' } } })).replace('"x":"1"', '"__proto__":"1"');
    const err = await expectError(await svc.post('/v1/jobs', raw), 400, 'validation_failed');
    assert.match(err.message, /__proto__/);
    const escaped = raw.replace('"__proto__"', '"\\u005f_proto__"');
    await expectError(await svc.post('/v1/jobs', escaped), 400, 'validation_failed');
  });

  it('keeps a key named __proto__ inside the payload, as sent', async () => {
    const raw = JSON.stringify(jobBody(`${rx.url}/h`, { payload: { PROTO: { a: 1 } } })).replace('"PROTO"', '"__proto__"');
    const { received } = await deliver({}, raw);
    assert.equal(received.body, '{"__proto__":{"a":1}}');
  });

  it('refuses a Content-Type that is not JSON, and sends a JSON one as given', async () => {
    for (const ct of ['text/html', 'application/xml', 'application/json; charset=latin1', 'multipart/form-data; boundary=x']) {
      await expectError(await svc.post('/v1/jobs', jobBody(`${rx.url}/h`, { destination: { url: `${rx.url}/h`, headers: { 'Content-Type': ct } } })), 422, 'validation_failed');
    }
    const { received } = await deliver({ destination: { url: `${rx.url}/h`, headers: { 'Content-Type': 'application/cloudevents+json; charset=utf-8' } } });
    assert.equal(received.headers['content-type'], 'application/cloudevents+json; charset=utf-8');
  });

  it('sends a User-Agent the job gives in place of PulseGate/<version>', async () => {
    const { received } = await deliver({ destination: { url: `${rx.url}/h`, headers: { 'User-Agent': 'acme-hooks/2' } } });
    assert.equal(received.headers['user-agent'], 'acme-hooks/2');
    const plain = await deliver({});
    assert.match(String(plain.received.headers['user-agent']), /^PulseGate\//);
  });

  it('delivers and shows the payload text exactly as sent: numbers past 2^53, escapes, key order', async () => {
    const payload = '{ "big": 9007199254740993, "small": 1.10, "e": 1E2, "s": "\\u00e9\\n", "z": 1, "a": [ 1 , 2 ] }';
    const raw = JSON.stringify(jobBody(`${rx.url}/h`, { payload: 0 })).replace('"payload":0', `"payload":${payload}`);
    const { job, text, received } = await deliver({}, raw);
    const exact = '{"big":9007199254740993,"small":1.10,"e":1E2,"s":"\\u00e9\\n","z":1,"a":[1,2]}';
    assert.equal(received.body, exact);
    assert.ok(text.includes(`"payload":${exact}`), text);
    const got = await (await svc.get(`/v1/jobs/${job.id}`)).text();
    assert.ok(got.includes(`"payload":${exact}`), got);
  });

  it('refuses a body in a charset it does not decode with 415, and reads an explicit utf-8', async () => {
    const body = JSON.stringify(jobBody(`${rx.url}/h`, LATER));
    for (const ct of ['application/json; charset=latin1', 'application/json; charset=utf-16', 'application/json;charset="ISO-8859-1"']) {
      const stored = await jobCount(svc);
      const res = await svc.request('/v1/jobs', { method: 'POST', headers: { 'content-type': ct }, body });
      await expectError(res, 415, 'unsupported_media_type');
      assert.equal(await jobCount(svc), stored);
    }
    for (const ct of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json;charset=utf8']) {
      const res = await svc.request('/v1/jobs', { method: 'POST', headers: { 'content-type': ct }, body: JSON.stringify(jobBody(`${rx.url}/h`, { payload: { ct }, ...LATER })) });
      assert.equal(res.status, 201, `${ct}: ${await res.text()}`);
    }
    await expectHealthy(svc);
  });
});
