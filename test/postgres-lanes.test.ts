// The lanes hold across instances (issue 14): two PulseGate processes on one PostgreSQL database,
// jobs for one destination created on both, and what the receiver sees. A destination's rate limit,
// its in-flight cap and its circuit are the cluster's, not each instance's: one instance at a time
// holds the destination under a lease and delivers it, and its state goes with it to the next.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from './support/postgres.js';
import { spawnService, stopAll, type ServiceProcess } from './support/process.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { eventually, jobBody } from './support/service.js';

const LEASE_MS = 2000;
const POLL_MS = 200;
const COOLDOWN_MS = 6000;
const THRESHOLD = 3;

/** The most arrivals in any window between two arrivals, against what a bucket allows there (+1). */
function worstWindow(times: number[], rps: number, burst: number): { count: number; allowed: number; excess: number } {
  const t = [...times].sort((a, b) => a - b);
  let worst = { count: 0, allowed: 0, excess: -Infinity };
  for (let i = 0; i < t.length; i++) {
    for (let j = i; j < t.length; j++) {
      const count = j - i + 1;
      const allowed = burst + (rps * ((t[j] as number) - (t[i] as number))) / 1000 + 1;
      if (count - allowed > worst.excess) worst = { count, allowed, excess: count - allowed };
    }
  }
  return worst;
}

/** The receiver's arrival times from the first, each with the instance that sent it (from its logs). */
function arrivals(rx: Receiver, instances: ServiceProcess[]): string {
  const by = new Map<string, number>();
  instances.forEach((p, n) => {
    for (const l of p.logs) if (l.event === 'attempt.finished') by.set(String(l.job_id), n);
  });
  const t0 = rx.requests[0]?.at ?? 0;
  return rx.requests.map((r) => `${r.at - t0}:${by.get(String(r.headers['webhook-id'])) ?? '?'}`).join(' ');
}

async function create(on: ServiceProcess, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${on.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

interface DestinationView {
  origin: string;
  waiting: number;
  in_flight: number;
  circuit: { state: string; probe_at: string | null };
}

async function destinationsOf(on: ServiceProcess): Promise<DestinationView[]> {
  const res = await fetch(`${on.url}/v1/destinations`);
  return ((await res.json()) as { data: DestinationView[] }).data;
}

if (await postgresAvailable('lanes across instances on PostgreSQL')) {
  describe('two instances on one PostgreSQL database share each destination\'s lane', () => {
    let db: TestDatabase;
    let sql: pg.Client;
    const instances: ServiceProcess[] = [];
    const receivers: Receiver[] = [];

    before(async () => {
      db = await createTestDatabase();
      const env = {
        DATABASE_URL: db.url,
        LEASE_MS: String(LEASE_MS),
        SCHEDULER_POLL_INTERVAL_MS: String(POLL_MS),
        CIRCUIT_FAILURE_THRESHOLD: String(THRESHOLD),
        CIRCUIT_COOLDOWN_MS: String(COOLDOWN_MS),
        PG_POOL_MAX: '4',
        SHUTDOWN_TIMEOUT_MS: '2000',
      };
      for (let i = 0; i < 2; i++) instances.push(await spawnService(env));
      sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
    });
    after(async () => {
      await stopAll(instances);
      await sql?.end();
      for (const r of receivers) await r.close();
      await db?.drop();
    });

    it('keeps one rate limit for the cluster: never more than burst + rps·t (+1) in any window at the receiver', async () => {
      const rx = await startReceiver();
      receivers.push(rx);
      const rate = { rps: 10, burst: 5 };
      const [a, b] = instances as [ServiceProcess, ServiceProcess];
      // 60 jobs, every other one created on each instance, all due at one moment a little ahead
      // (within the 2 s an instance holds a job it creates in memory, which it would deliver itself
      // if it could): both instances wake for them at once. And this process, whose clock stamps the
      // arrivals, is idle by then: while busy creating, it stamps arrivals late and they look bunched.
      const runAt = new Date(Date.now() + 1800).toISOString();
      const ids = await Promise.all(
        Array.from({ length: 60 }, (_, i) => create(i % 2 ? a : b, jobBody(`${rx.url}/paced`, { payload: { i }, rate_limit: rate, run_at: runAt }))),
      );
      await rx.waitFor(60, 30_000);
      await sleep(500); // nothing more comes
      assert.equal(rx.requests.length, 60, 'each job delivered once');
      assert.deepEqual(new Set(rx.requests.map((r) => r.headers['webhook-id'])), new Set(ids));
      const worst = worstWindow(rx.requests.map((r) => r.at), rate.rps, rate.burst);
      console.log(`# rate: worst window ${worst.count} requests where ${worst.allowed.toFixed(2)} are allowed`);
      assert.ok(worst.excess <= 0, `${worst.count} requests in a window that allows ${worst.allowed.toFixed(2)}; arrivals (ms, by instance): ${arrivals(rx, instances)}`);
    });

    it('keeps one in-flight cap for the cluster: never more than max_in_flight at once at the receiver', async () => {
      let now = 0;
      let most = 0;
      const rx = await startReceiver(async (_req, res) => {
        now++;
        most = Math.max(most, now);
        await sleep(150);
        now--;
        res.writeHead(200).end('ok');
      });
      receivers.push(rx);
      const [a, b] = instances as [ServiceProcess, ServiceProcess];
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          create(i % 2 ? a : b, jobBody(`${rx.url}/slow`, { payload: { i }, rate_limit: { rps: 1000, burst: 1000, max_in_flight: 3 } })),
        ),
      );
      await rx.waitFor(40, 30_000);
      console.log(`# cap: at most ${most} requests at once (cap 3)`);
      assert.ok(most <= 3, `${most} requests at once`);
      assert.ok(most >= 2, 'the cap was reached: the test can tell');
    });

    it('keeps a circuit opened on one instance shut on both, and hands it to the survivor when its holder is killed', async () => {
      let up = false;
      const rx = await startReceiver((_req, res) => {
        res.writeHead(up ? 200 : 503).end(up ? 'ok' : 'down');
      });
      receivers.push(rx);
      const [a, b] = instances as [ServiceProcess, ServiceProcess];
      const body = (i: number) => jobBody(`${rx.url}/flaky`, { payload: { i }, retry: { max_attempts: 20, base_delay_ms: 50, max_delay_ms: 100 } });
      const ids = await Promise.all([0, 1, 2, 3].map((i) => create(i % 2 ? a : b, body(i))));

      // the circuit opens on whichever instance holds the destination
      const { holder, probeAt } = await eventually(async () => {
        for (const p of [a, b]) {
          const d = (await destinationsOf(p)).find((x) => x.origin === rx.url && x.circuit.state === 'open');
          if (d?.circuit.probe_at) return { holder: p, probeAt: Date.parse(d.circuit.probe_at) };
        }
        return null;
      }, 15_000);
      const other = holder === a ? b : a;
      const shutAt = Date.now();
      const before = rx.requests.length;
      assert.ok(before >= THRESHOLD, `${before} attempts opened it`);

      // during the cool-down: jobs created on both instances, then the holder killed
      ids.push(...(await Promise.all([4, 5, 6, 7, 8, 9].map((i) => create(i % 2 ? a : b, body(i))))));
      await sleep(500);
      const lease = (
        await sql.query<{ owner: string; expires_at: string }>(`SELECT owner, expires_at FROM destination_leases WHERE origin = $1`, [rx.url])
      ).rows[0];
      assert.ok(lease?.owner.includes(`:${holder.child.pid}:`), `the holder (pid ${holder.child.pid}) holds the lease: ${lease?.owner}`);
      assert.ok(lease);
      holder.child.kill('SIGKILL');
      await holder.exited;
      const killedAt = Date.now();
      const leaseEnd = Number(lease.expires_at);
      // due now, on the survivor: it may claim them only once the dead holder's lease has run out
      ids.push(...(await Promise.all([10, 11, 12].map((i) => create(other, body(i))))));
      assert.ok(probeAt - killedAt > LEASE_MS + 1000, 'the holder died well inside the cool-down: the survivor takes over while it is still open');

      // the survivor takes the destination over after the lease, with the circuit still open
      await eventually(async () => {
        const row = (await sql.query<{ owner: string }>(`SELECT owner FROM destination_leases WHERE origin = $1`, [rx.url])).rows[0];
        return row?.owner?.includes(`:${other.child.pid}:`);
      }, LEASE_MS * 3 + 5000, 50);
      const takenAt = Date.now();
      assert.ok(takenAt >= leaseEnd, `taken over ${leaseEnd - takenAt} ms before the lease ran out`);
      assert.ok(takenAt < probeAt - 500, 'taken over within the cool-down');
      // the lease row is written by the claim; the survivor's lane (and so its view) follows once it
      // has read the state the holder left, a query later
      const seen = await eventually(async () => (await destinationsOf(other)).find((x) => x.origin === rx.url), 5000, 20);
      assert.equal(seen.circuit.state, 'open', 'the survivor keeps the circuit the dead holder opened');

      // nothing reached the receiver during the cool-down, from either instance
      await sleep(Math.max(0, probeAt - Date.now() - 300));
      const during = rx.requests.slice(before).filter((r) => r.at < probeAt - 50);
      assert.deepEqual(during.map((r) => r.at - shutAt), [], 'no attempt during the cool-down');

      // the receiver comes back: the probe closes the circuit and every job is delivered
      up = true;
      await eventually(async () => {
        const { rows } = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::text[]) AND status = 'success'`, [ids]);
        return rows[0]?.n === ids.length;
      }, 30_000, 100);
      const firstAfter = rx.requests.slice(before)[0];
      assert.ok(firstAfter && firstAfter.at >= probeAt - 50, 'the first attempt after opening was the probe, at its time');
      console.log(
        `# circuit: opened after ${before} attempts, ${rx.requests.length - before} attempts after; survivor took over ${takenAt - killedAt} ms after the kill (lease ${LEASE_MS} ms); probe ${firstAfter.at - probeAt} ms after probe_at`,
      );
    });
  });
}
