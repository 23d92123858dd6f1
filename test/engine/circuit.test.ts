// The circuit breaker over real HTTP: a destination refusing connections opens its circuit after
// the threshold; during the cool-down the receiver sees nothing and waiting jobs spend no attempt;
// when it comes back the probe closes the circuit and every waiting job is delivered at its rate
// limit. Seen through GET /v1/destinations, the metrics and the logs.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { generateKey } from '../../src/auth/keys.js';
import { startReceiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { createJob, type JobView } from '../support/jobs.js';

interface Destination {
  id: string;
  tenant_id: string;
  origin: string;
  circuit: { state: string; consecutive_failures: number; probe_at: string | null };
  in_flight: number;
  waiting: number;
  max_in_flight: number;
  last_error: string | null;
  last_error_at: string | null;
}

/** A loopback port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function destinations(svc: TestService, query = ''): Promise<Destination[]> {
  const res = await svc.get(`/v1/destinations${query}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { data: Destination[] }).data;
}

async function jobs(svc: TestService): Promise<JobView[]> {
  return ((await (await svc.get('/v1/jobs?limit=1000')).json()) as { data: JobView[] }).data;
}

describe('circuit breaker (real HTTP)', () => {
  it('opens on connection errors, holds jobs without attempts through the cool-down, and a probe closes it', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hook`;
    const svc = await startTestService({ CIRCUIT_FAILURE_THRESHOLD: '3', CIRCUIT_COOLDOWN_MS: '1500' });
    const logs: { msg: string; to?: string }[] = [];
    svc.events.on((e) => {
      if (e.type === 'circuit.changed') logs.push({ msg: 'circuit', to: e.to });
    });
    let rx: Awaited<ReturnType<typeof startReceiverOn>> | null = null;
    try {
      // rps 20, burst 1: the first three fail within ~100 ms and open the circuit
      const body = (i: number) =>
        jobBody(url, { payload: { i }, rate_limit: { rps: 20, burst: 1 }, retry: { max_attempts: 5, base_delay_ms: 60_000 } });
      for (let i = 0; i < 20; i++) await createJob(svc, body(i));
      const [open] = await eventually(async () => {
        const ds = await destinations(svc, '?circuit=open');
        return ds.length ? ds : null;
      });
      assert.equal(open?.origin, `http://127.0.0.1:${port}`);
      assert.equal(open?.circuit.consecutive_failures, 3);
      assert.match(String(open?.last_error), /ECONNREFUSED|refused/i);
      const probeAt = Date.parse(String(open?.circuit.probe_at));

      // the third result is written by the engine's write batch, a moment after the circuit opened
      const before = await eventually(async () => {
        const js = await jobs(svc);
        return js.filter((j) => j.attempts === 1).length >= 3 ? js : null;
      });
      assert.equal(before.filter((j) => j.attempts === 1).length, 3, 'three attempts opened it');
      assert.equal(before.filter((j) => j.attempts === 0).length, 17, 'the rest wait without spending attempts');

      // the receiver comes back during the cool-down: it must see nothing before the probe
      const back = await startReceiverOn(port);
      rx = back;
      const metricsOpen = await (await svc.get('/metrics')).text();
      assert.match(metricsOpen, /^pulsegate_circuits_open 1$/m);
      assert.match(metricsOpen, /^pulsegate_circuit_transitions_total\{to="open"\} 1$/m);

      await back.waitFor(17, 10_000);
      const times = back.requests.map((r) => r.at).sort((a, b) => a - b);
      assert.ok((times[0] as number) >= probeAt - 5, `no attempt during the cool-down (first at ${(times[0] as number) - probeAt} ms from the probe time)`);
      // a token bucket lets through at most burst + rps * t in any window of t seconds (+1 for jitter)
      for (let i = 0; i < times.length; i++) {
        for (let j = i + 1; j < times.length; j++) {
          const seconds = ((times[j] as number) - (times[i] as number)) / 1000;
          assert.ok(j - i + 1 <= 1 + 20 * seconds + 1, `${j - i + 1} deliveries within ${seconds} s: the rate limit holds after the circuit closes`);
        }
      }
      const after = await eventually(async () => {
        const all = await jobs(svc);
        return all.filter((j) => j.status === 'success').length === 17 ? all : null;
      });
      for (const j of after.filter((x) => x.status === 'success')) assert.equal(j.attempts, 1, 'delivered with its first attempt');
      const [closed] = await destinations(svc);
      assert.equal(closed?.circuit.state, 'closed');
      assert.deepEqual(logs.map((l) => l.to), ['open', 'half_open', 'closed']);
      const metrics = await (await svc.get('/metrics')).text();
      assert.match(metrics, /^pulsegate_circuits_open 0$/m);
      assert.match(metrics, /^pulsegate_circuit_transitions_total\{to="closed"\} 1$/m);
    } finally {
      await svc.cleanup();
      await rx?.close();
    }
  });

  it('closes a circuit by hand with POST /v1/destinations/{id}/reset; an unknown id is a 404', async () => {
    const port = await freePort();
    // a cool-down under the 2 s a job may wait in memory: the next job waits in its lane
    const svc = await startTestService({ CIRCUIT_FAILURE_THRESHOLD: '1', CIRCUIT_COOLDOWN_MS: '1900' });
    try {
      await createJob(svc, jobBody(`http://127.0.0.1:${port}/x`, { retry: { max_attempts: 1 } }));
      const [d] = await eventually(async () => {
        const ds = await destinations(svc, '?circuit=open');
        return ds.length ? ds : null;
      });
      const rx = await startReceiverOn(port);
      try {
        await createJob(svc, jobBody(`http://127.0.0.1:${port}/x`, { payload: { second: true } }));
        const res = await svc.post(`/v1/destinations/${d?.id}/reset`, {});
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as Destination).circuit.state, 'closed');
        await rx.waitFor(1, 5000);
        assert.ok((rx.requests[0]?.at as number) < Date.parse(String(d?.circuit.probe_at)), 'sent at once, not at the probe time');
      } finally {
        await rx.close();
      }
      for (const bad of ['nope', 'bm9ib2R5IGh0dHA6Ly94LnRlc3Q', '%2e%2e']) {
        const r = await svc.post(`/v1/destinations/${bad}/reset`, {});
        assert.equal(r.status, 404);
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'not_found');
      }
    } finally {
      await svc.cleanup();
    }
  });
});

describe('destinations API: tenant isolation', () => {
  it('shows a tenant key only its own destinations, and another tenant’s id reads as unknown', async () => {
    const acme = generateKey().key;
    const globex = generateKey().key;
    const admin = generateKey().key;
    const rx = await startReceiver();
    const svc = await startTestService({ API_KEYS: `acme:${acme},globex:${globex},*:${admin}` });
    const as = (key: string, path: string, method = 'GET') =>
      svc.request(path, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
    try {
      for (const [tenant, key] of [['acme', acme], ['globex', globex]] as const) {
        const res = await svc.request('/v1/jobs', {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ ...jobBody(`${rx.url}/hook`), tenant_id: tenant }),
        });
        assert.equal(res.status, 201);
      }
      await rx.waitFor(2, 5000);
      const mine = ((await (await as(acme, '/v1/destinations')).json()) as { data: Destination[] }).data;
      assert.deepEqual(mine.map((d) => d.tenant_id), ['acme']);
      assert.equal((await as(acme, '/v1/destinations?tenant_id=globex')).status, 403);
      const all = ((await (await as(admin, '/v1/destinations')).json()) as { data: Destination[] }).data;
      assert.deepEqual(all.map((d) => d.tenant_id).sort(), ['acme', 'globex']);
      const theirs = all.find((d) => d.tenant_id === 'globex') as Destination;
      assert.equal((await as(acme, `/v1/destinations/${theirs.id}/reset`, 'POST')).status, 404);
      assert.equal((await as(globex, `/v1/destinations/${theirs.id}/reset`, 'POST')).status, 200);
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });
});

/** A receiver on a given port (the destination coming back up). */
async function startReceiverOn(port: number) {
  // startReceiver listens on port 0; this one needs the port the jobs point at
  const requests: { at: number; url: string }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests.push({ at: Date.now(), url: req.url ?? '' });
      for (const w of [...waiters]) if (requests.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    requests,
    waitFor(n: number, timeoutMs: number) {
      if (requests.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`got ${requests.length} of ${n} requests`)), timeoutMs);
        waiters.push({ n, resolve: () => { clearTimeout(t); resolve(); } });
      });
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
