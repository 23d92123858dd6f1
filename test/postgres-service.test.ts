// PulseGate on PostgreSQL over real HTTP: instances started with DATABASE_URL on a fresh database,
// jobs created through the API and delivered to a real receiver on a loopback port.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createJob, getJob, waitForStatus } from './support/jobs.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from './support/postgres.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { jobBody, eventually, startTestService, type TestService } from './support/service.js';

if (await postgresAvailable('service on PostgreSQL')) {
  describe('service on PostgreSQL', () => {
    let db: TestDatabase;
    let rx: Receiver;
    let a: TestService;
    let b: TestService | undefined;
    let sql: pg.Client;
    const held: (() => void)[] = [];

    before(async () => {
      db = await createTestDatabase();
      rx = await startReceiver(async (req, res) => {
        // /hold waits until the test lets it go: an attempt kept in flight
        if (req.url.startsWith('/hold')) await new Promise<void>((r) => held.push(r));
        res.writeHead(200).end('ok');
      });
      a = await startTestService({ DATABASE_URL: db.url, SCHEDULER_POLL_INTERVAL_MS: '50', PG_POOL_MAX: '4' });
      sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
    });
    after(async () => {
      for (const release of held.splice(0)) release();
      await a?.cleanup();
      await b?.cleanup();
      await sql?.end();
      await rx?.close();
      await db?.drop();
    });

    it('stores a created job in PostgreSQL and delivers it to the receiver', async () => {
      assert.equal(a.store.driver, 'postgres');
      const job = await createJob(a, jobBody(`${rx.url}/one`, { payload: { n: 1 } }));
      const done = await waitForStatus(a, job.id, 'success');
      assert.equal(done.attempts, 1);
      const got = rx.requests.filter((r) => r.headers['webhook-id'] === job.id);
      assert.equal(got.length, 1);
      assert.equal(got[0]?.body, '{"n":1}');
      const { rows } = await sql.query('SELECT status, attempts FROM jobs WHERE id = $1', [job.id]);
      assert.deepEqual(rows, [{ status: 'success', attempts: 1 }]);
    });

    it('starts a second instance without freeing the leases the first one holds', async () => {
      const job = await createJob(a, jobBody(`${rx.url}/hold`));
      await eventually(async () => held.length > 0);
      const before = (await sql.query('SELECT lease_owner FROM jobs WHERE id = $1', [job.id])).rows[0]?.lease_owner;
      assert.equal(before, a.engine.owner, 'the first instance holds the job in flight');
      b = await startTestService({ DATABASE_URL: db.url, SCHEDULER_POLL_INTERVAL_MS: '50', PG_POOL_MAX: '4' });
      assert.notEqual(b.engine.owner, a.engine.owner);
      const after = (await sql.query('SELECT lease_owner FROM jobs WHERE id = $1', [job.id])).rows[0]?.lease_owner;
      assert.equal(after, a.engine.owner, 'still held by the first instance');
      for (const release of held.splice(0)) release();
      await waitForStatus(b, job.id, 'success');
      assert.equal(rx.requests.filter((r) => r.headers['webhook-id'] === job.id).length, 1, 'delivered once');
    });

    it('delivers each job once when two instances share the database, whichever claims it', async () => {
      assert.ok(b);
      const second = b;
      const runAt = new Date(Date.now() + 300).toISOString();
      const jobs: { id: string; on: TestService }[] = [];
      for (let i = 0; i < 30; i++) {
        const on = i % 2 ? a : second;
        jobs.push({ id: (await createJob(on, jobBody(`${rx.url}/many`, { run_at: runAt, payload: { i } }))).id, on });
      }
      for (const j of jobs) await waitForStatus(j.on, j.id, 'success');
      const ids = new Set(jobs.map((j) => j.id));
      const deliveries = rx.requests.filter((r) => ids.has(String(r.headers['webhook-id'])));
      assert.equal(deliveries.length, 30, 'each job delivered exactly once');
      assert.equal(new Set(deliveries.map((r) => r.headers['webhook-id'])).size, 30);
      // either instance reads what the other did
      for (const j of jobs) assert.equal((await getJob(j.on === a ? second : a, j.id)).status, 'success');
    });

    it('answers one Idempotency-Key sent to two instances at once with one job', async () => {
      assert.ok(b);
      const body = jobBody(`${rx.url}/idem`);
      const [x, y] = await Promise.all([
        a.post('/v1/jobs', body, { 'idempotency-key': 'order-7' }),
        b.post('/v1/jobs', body, { 'idempotency-key': 'order-7' }),
      ]);
      assert.deepEqual([x.status, y.status].sort(), [200, 201]);
      const [jx, jy] = (await Promise.all([x.json(), y.json()])) as { id: string }[];
      assert.equal(jx?.id, jy?.id);
      const { rows } = await sql.query("SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = 'order-7'");
      assert.equal(rows[0].n, 1);
    });
  });

  describe('wake-ups across instances on PostgreSQL (LISTEN/NOTIFY)', () => {
    let db: TestDatabase;
    let rx: Receiver;
    let other: Receiver;
    let a: TestService;
    let b: TestService;
    const held: (() => void)[] = [];
    // polls far apart: only a wake-up can explain a job started by the other instance in time
    const env = (db: TestDatabase, more: Record<string, string> = {}) => ({
      DATABASE_URL: db.url, SCHEDULER_POLL_INTERVAL_MS: '600000', PG_POOL_MAX: '4', ...more,
    });

    before(async () => {
      db = await createTestDatabase();
      rx = await startReceiver(async (req, res) => {
        if (req.url.startsWith('/hold')) await new Promise<void>((r) => held.push(r));
        res.writeHead(200).end('ok');
      });
      other = await startReceiver();
      a = await startTestService(env(db, { QUEUE_CAPACITY: '1', WORKER_CONCURRENCY: '1' }));
    });
    after(async () => {
      for (const release of held.splice(0)) release();
      await a?.cleanup();
      await b?.cleanup();
      await rx?.close();
      await other?.close();
      await db?.drop();
    });

    it('starts a job created on a full instance on another one, woken by the commit', async () => {
      // fill the first instance: its only worker busy with an attempt kept in flight, its memory
      // queue (room for one) holding the next job; a third job then finds no room there. The second
      // instance starts after: it would otherwise race the first for the /hold destination, and the
      // one that takes it alone delivers it (lanes across instances)
      await createJob(a, jobBody(`${rx.url}/hold`, { payload: { n: 1 } }));
      await eventually(async () => held.length > 0);
      const waiting = await createJob(a, jobBody(`${rx.url}/hold`, { payload: { n: 2 } }));
      assert.equal(a.engine.stats().queued, 1, `${waiting.id} waits in the first instance's memory`);
      b = await startTestService(env(db));
      const startedOnB: string[] = [];
      const off = b.events.on((e) => {
        if (e.type === 'attempt.finished') startedOnB.push(e.job_id);
      });
      try {
        // to another destination: the first instance holds this one, and only its holder delivers a
        // destination (lanes across instances, test/postgres-lanes.test.ts)
        const job = await createJob(a, jobBody(`${other.url}/woken`));
        await waitForStatus(b, job.id, 'success');
        assert.deepEqual(startedOnB, [job.id], 'the second instance delivered it');
      } finally {
        off();
      }
    });
  });
}
