// The dispatcher against real HTTP receivers on loopback ports. Nothing here leaves 127.0.0.1 / ::1:
// made-up names (evil.test) are answered by an injected resolver.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { createServer, type AddressInfo, type LookupFunction } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { DeliveryResult } from '../../src/domain/attempt.js';
import type { Destination } from '../../src/domain/job.js';
import { createDispatcher, MAX_RESPONSE_BODY_BYTES, type DeliveryRequest, type Dispatcher } from '../../src/delivery/dispatcher.js';
import { createSigner } from '../../src/delivery/signing.js';
import { createDestinationGuard } from '../../src/delivery/ssrf.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

const UA = 'PulseGate-test/1.0';
const openGuard = createDestinationGuard({ allowPrivate: true, allowedCidrs: [] });

function fakeResolver(table: Record<string, string[]>): LookupFunction {
  return (hostname, options, callback) => {
    const answers = table[hostname];
    if (!answers) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
    const all: LookupAddress[] = answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    if (options.all) return callback(null, all);
    callback(null, all[0]!.address, all[0]!.family);
  };
}

function request(url: string, over: Partial<Destination> = {}, job_id = 'job_0001'): DeliveryRequest {
  return {
    job_id,
    tenant_id: 'tenant-a',
    destination: { url, method: 'POST', timeout_ms: 2000, headers: {}, ...over },
    payload_json: '{"event":"ping","n":1}',
    timestamp_s: Math.floor(Date.now() / 1000),
  };
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function failure(r: DeliveryResult) {
  assert.notEqual(r.outcome, 'success', `expected a failure, got ${JSON.stringify(r)}`);
  return r as Exclude<DeliveryResult, { outcome: 'success' }>;
}

describe('dispatcher', () => {
  let rx: Receiver;
  let dispatcher: Dispatcher;

  before(async () => {
    rx = await startReceiver();
    dispatcher = createDispatcher({ userAgent: UA, guard: openGuard });
  });
  after(async () => {
    await dispatcher.close();
    await rx.close();
  });

  describe('outcomes', () => {
    it('reports a 2xx as success with the response body', async () => {
      rx.setHandler((_q, res) => void res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}'));
      assert.deepEqual(await dispatcher.deliver(request(`${rx.url}/hook`)), { outcome: 'success', status_code: 201, response_body: '{"ok":true}' });
    });

    it('reports an empty body as null', async () => {
      rx.setHandler((_q, res) => void res.writeHead(204).end());
      assert.deepEqual(await dispatcher.deliver(request(rx.url)), { outcome: 'success', status_code: 204, response_body: null });
    });

    it('does not follow a redirect: 3xx is permanent and the target gets nothing', async () => {
      const target = await startReceiver();
      try {
        for (const status of [301, 302, 303, 307, 308]) {
          rx.setHandler((_q, res) => void res.writeHead(status, { location: `${target.url}/elsewhere` }).end('moved'));
          const r = failure(await dispatcher.deliver(request(rx.url)));
          assert.deepEqual(r, { outcome: 'permanent_error', error_kind: 'http', status_code: status, error: `HTTP ${status}`, response_body: 'moved' });
        }
        assert.equal(target.requests.length, 0);
      } finally {
        await target.close();
      }
    });

    it('treats other 4xx as permanent', async () => {
      for (const status of [400, 401, 403, 404, 410, 422]) {
        rx.setHandler((_q, res) => void res.writeHead(status).end(`no ${status}`));
        const r = failure(await dispatcher.deliver(request(rx.url)));
        assert.equal(r.outcome, 'permanent_error', `status ${status}`);
        assert.equal(r.error_kind, 'http');
        assert.equal(r.status_code, status);
        assert.equal(r.response_body, `no ${status}`);
      }
    });

    it('treats 408, 425, 429 and 5xx as retryable', async () => {
      for (const status of [408, 425, 429, 500, 502, 503, 504]) {
        rx.setHandler((_q, res) => void res.writeHead(status).end('busy'));
        const r = failure(await dispatcher.deliver(request(rx.url)));
        assert.deepEqual(r, { outcome: 'retryable_error', error_kind: 'http', status_code: status, error: `HTTP ${status}`, response_body: 'busy', retry_after_ms: null });
      }
    });

    it('passes on Retry-After in seconds from a 429', async () => {
      rx.setHandler((_q, res) => void res.writeHead(429, { 'retry-after': '17' }).end());
      const r = failure(await dispatcher.deliver(request(rx.url)));
      assert.equal(r.outcome === 'retryable_error' && r.retry_after_ms, 17_000);
    });

    it('passes on a Retry-After date from a 503, relative to the injected clock', async () => {
      const now = Date.parse('2026-03-01T12:00:00.000Z');
      const d = createDispatcher({ userAgent: UA, guard: openGuard, clock: { now: () => now } });
      try {
        rx.setHandler((_q, res) => void res.writeHead(503, { 'retry-after': new Date(now + 90_000).toUTCString() }).end());
        const r = failure(await d.deliver(request(rx.url)));
        assert.equal(r.outcome === 'retryable_error' && r.retry_after_ms, 90_000);
      } finally {
        await d.close();
      }
    });
  });

  describe('what is sent', () => {
    it('sends the payload bytes, method, content-type, user-agent, custom headers and webhook-* headers', async () => {
      rx.setHandler((_q, res) => void res.writeHead(200).end());
      const before = rx.requests.length;
      const req = request(`${rx.url}/in?x=1`, { method: 'PUT', headers: { 'X-Custom': 'abc', Authorization: 'Bearer t0k' } }, 'job_headers');
      req.payload_json = '{"emoji":"🚀","s":"é"}';
      assert.equal((await dispatcher.deliver(req)).outcome, 'success');
      const got = rx.requests[before]!;
      assert.equal(got.method, 'PUT');
      assert.equal(got.url, '/in?x=1');
      assert.equal(got.body, req.payload_json);
      assert.equal(got.headers['content-type'], 'application/json');
      assert.equal(got.headers['content-length'], String(Buffer.byteLength(req.payload_json)));
      assert.equal(got.headers['user-agent'], UA);
      assert.equal(got.headers['x-custom'], 'abc');
      assert.equal(got.headers.authorization, 'Bearer t0k');
      assert.equal(got.headers['webhook-id'], 'job_headers');
      assert.equal(got.headers['webhook-timestamp'], String(req.timestamp_s));
      assert.equal(got.headers['webhook-signature'], undefined);
    });

    it('keeps webhook-id the same on every attempt, and a job header cannot override it', async () => {
      rx.setHandler((_q, res) => void res.writeHead(500).end());
      const before = rx.requests.length;
      const first = request(rx.url, { headers: { 'webhook-id': 'forged', 'Webhook-Timestamp': '1' } }, 'job_stable');
      await dispatcher.deliver(first);
      await dispatcher.deliver({ ...first, timestamp_s: first.timestamp_s + 30 });
      const [a, b] = rx.requests.slice(before);
      assert.equal(a?.headers['webhook-id'], 'job_stable');
      assert.equal(b?.headers['webhook-id'], 'job_stable');
      assert.equal(a?.headers['webhook-timestamp'], String(first.timestamp_s));
      assert.equal(b?.headers['webhook-timestamp'], String(first.timestamp_s + 30));
    });

    it('reuses a keep-alive connection for the next delivery to the same origin', async () => {
      const ports: number[] = [];
      rx.setHandler((_q, res) => {
        ports.push(res.socket?.remotePort ?? -1);
        res.writeHead(200).end('ok');
      });
      // undici marks a connection free a tick after its response ends; back-to-back sends may open another.
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        await dispatcher.deliver(request(rx.url));
      }
      assert.equal(ports.length, 3);
      assert.equal(new Set(ports).size, 1, `remote ports ${ports.join(', ')}`);
    });

    it('signs with every active secret during a rotation, and the receiver verifies either', async () => {
      const [oldS, newS] = [`whsec_${randomBytes(32).toString('base64')}`, `whsec_${randomBytes(32).toString('base64')}`];
      const signer = createSigner({ secrets: [{ secret: oldS, expires_at: Date.now() + 60_000 }, { secret: newS }] });
      const d = createDispatcher({ userAgent: UA, guard: openGuard, signer });
      const verdicts: string[] = [];
      rx.setHandler((q, res) => {
        const headers = q.headers as Record<string, string>;
        for (const s of [oldS, newS]) {
          try {
            new Webhook(s).verify(q.body, headers);
            verdicts.push('ok');
          } catch (e) {
            verdicts.push(String(e));
          }
        }
        res.writeHead(200).end();
      });
      try {
        const before = rx.requests.length;
        assert.equal((await d.deliver(request(rx.url))).outcome, 'success');
        const sig = rx.requests[before]?.headers['webhook-signature'];
        assert.match(String(sig), /^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
        assert.deepEqual(verdicts, ['ok', 'ok']);
      } finally {
        await d.close();
      }
    });
  });

  describe('response bodies', () => {
    it('keeps only the first 4 KiB of a large body', async () => {
      rx.setHandler((_q, res) => void res.writeHead(200).end('x'.repeat(10_000)));
      const r = await dispatcher.deliver(request(rx.url));
      assert.equal(r.response_body?.length, MAX_RESPONSE_BODY_BYTES);
    });

    it('drops a multi-byte character cut at the limit instead of mangling it', async () => {
      rx.setHandler((_q, res) => void res.writeHead(200).end(`a${'é'.repeat(3000)}`));
      const r = await dispatcher.deliver(request(rx.url));
      assert.equal(r.response_body, `a${'é'.repeat(2047)}`);
    });

    it('stops reading an endless body after 4 KiB instead of buffering it', async () => {
      let writes = 0;
      rx.setHandler((_q, res) => {
        res.writeHead(200);
        const t = setInterval(() => {
          if (++writes > 5000) return void (clearInterval(t), res.end());
          res.write('y'.repeat(1024));
        }, 1);
        res.on('close', () => clearInterval(t));
      });
      const started = Date.now();
      const r = await dispatcher.deliver(request(rx.url, { timeout_ms: 10_000 }));
      assert.deepEqual(r, { outcome: 'success', status_code: 200, response_body: 'y'.repeat(MAX_RESPONSE_BODY_BYTES) });
      assert.ok(Date.now() - started < 3000, 'returned without reading the whole stream');
    });
  });

  describe('network failures', () => {
    it('times out a receiver that never answers, within timeout_ms', async () => {
      rx.setHandler(() => {});
      const started = Date.now();
      const r = failure(await dispatcher.deliver(request(rx.url, { timeout_ms: 300 })));
      const took = Date.now() - started;
      assert.equal(r.outcome, 'retryable_error');
      assert.equal(r.error_kind, 'timeout');
      assert.equal(r.status_code, null);
      assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    });

    it('times out a body that trickles past timeout_ms, keeping the status', async () => {
      rx.setHandler((_q, res) => {
        res.writeHead(200);
        let n = 0;
        const t = setInterval(() => (++n > 100 ? (clearInterval(t), res.end()) : res.write('a')), 50);
        res.on('close', () => clearInterval(t));
      });
      const started = Date.now();
      const r = failure(await dispatcher.deliver(request(rx.url, { timeout_ms: 400 })));
      const took = Date.now() - started;
      assert.equal(r.outcome, 'retryable_error');
      assert.equal(r.error_kind, 'timeout');
      assert.equal(r.status_code, 200);
      assert.ok(took >= 350 && took < 2000, `took ${took} ms`);
    });

    it('reports a refused connection as a retryable connect error', async () => {
      const port = await closedPort();
      const r = failure(await dispatcher.deliver(request(`http://127.0.0.1:${port}/`)));
      assert.equal(r.outcome, 'retryable_error');
      assert.equal(r.error_kind, 'connect');
      assert.match(r.error, /ECONNREFUSED/);
    });

    it('reports a failed name lookup as a retryable dns error', async () => {
      const guard = createDestinationGuard({ allowPrivate: true, allowedCidrs: [], lookup: fakeResolver({}) });
      const d = createDispatcher({ userAgent: UA, guard });
      try {
        const r = failure(await d.deliver(request(`http://nowhere.test:${rx.port}/`)));
        assert.equal(r.outcome, 'retryable_error');
        assert.equal(r.error_kind, 'dns');
      } finally {
        await d.close();
      }
    });

    it('reports a TLS handshake failure as a retryable tls error', async () => {
      rx.setHandler((_q, res) => void res.writeHead(200).end());
      const r = failure(await dispatcher.deliver(request(`https://127.0.0.1:${rx.port}/`)));
      assert.equal(r.outcome, 'retryable_error');
      assert.equal(r.error_kind, 'tls');
    });

    it('never throws, even for a request undici refuses to build', async () => {
      const r = failure(await dispatcher.deliver(request(rx.url, { headers: { 'x-bad': 'a\r\nb' } })));
      assert.equal(r.outcome, 'permanent_error');
      const bad = failure(await dispatcher.deliver(request('not a url')));
      assert.equal(bad.outcome, 'permanent_error');
    });
  });

  describe('SSRF guard at delivery', () => {
    const strict = createDestinationGuard({
      allowPrivate: false,
      allowedCidrs: [],
      lookup: fakeResolver({ 'evil.test': ['127.0.0.1'], 'mixed.test': ['93.184.216.34', '127.0.0.1'] }),
    });

    it('refuses a name that resolves to loopback at connect time (DNS rebinding), permanently', async () => {
      // The name passes the creation-time check: only the connect-time answer reveals it.
      assert.deepEqual(strict.checkUrl(`http://evil.test:${rx.port}/`), { ok: true });
      const d = createDispatcher({ userAgent: UA, guard: strict });
      const before = rx.requests.length;
      try {
        for (const host of ['evil.test', 'mixed.test']) {
          const r = failure(await d.deliver(request(`http://${host}:${rx.port}/`)));
          assert.equal(r.outcome, 'permanent_error');
          assert.equal(r.error_kind, 'blocked');
          assert.match(r.error, /127\.0\.0\.1/);
        }
        assert.equal(rx.requests.length, before);
      } finally {
        await d.close();
      }
    });

    it('refuses literal private IPs in any spelling before connecting', async () => {
      const d = createDispatcher({ userAgent: UA, guard: strict });
      const before = rx.requests.length;
      try {
        for (const host of ['127.0.0.1', '2130706433', '0x7f.0.0.1', '0177.0.0.1', '127.1', '[::ffff:127.0.0.1]']) {
          const r = failure(await d.deliver(request(`http://${host}:${rx.port}/`)));
          assert.equal(r.outcome, 'permanent_error', host);
          assert.equal(r.error_kind, 'blocked', host);
        }
        assert.equal(rx.requests.length, before);
      } finally {
        await d.close();
      }
    });

    it('connects to the address the guarded resolver answered when its range is allowed', async () => {
      const guard = createDestinationGuard({ allowPrivate: false, allowedCidrs: ['127.0.0.0/8'], lookup: fakeResolver({ 'evil.test': ['127.0.0.1'] }) });
      const d = createDispatcher({ userAgent: UA, guard });
      rx.setHandler((_q, res) => void res.writeHead(200).end('via evil.test'));
      try {
        const before = rx.requests.length;
        assert.deepEqual(await d.deliver(request(`http://evil.test:${rx.port}/`)), { outcome: 'success', status_code: 200, response_body: 'via evil.test' });
        assert.equal(rx.requests[before]?.headers.host, `evil.test:${rx.port}`);
      } finally {
        await d.close();
      }
    });
  });

  describe('IPv6 loopback', () => {
    it('delivers to a receiver on [::1]', async (t) => {
      let rx6: Receiver;
      try {
        rx6 = await startReceiver(undefined, '::1');
      } catch {
        return t.skip('no IPv6 loopback here');
      }
      try {
        assert.equal(rx6.url, `http://[::1]:${rx6.port}`);
        assert.deepEqual(await dispatcher.deliver(request(rx6.url)), { outcome: 'success', status_code: 200, response_body: 'ok' });
        const strict = createDispatcher({ userAgent: UA, guard: createDestinationGuard({ allowPrivate: false, allowedCidrs: [] }) });
        try {
          const r = failure(await strict.deliver(request(rx6.url)));
          assert.equal(r.error_kind, 'blocked');
        } finally {
          await strict.close();
        }
        assert.equal(rx6.requests.length, 1);
      } finally {
        await rx6.close();
      }
    });
  });
});
