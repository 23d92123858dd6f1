// Store faults on PostgreSQL, answered cleanly: an outage of this test's own database (the shared
// server keeps running for the other tests) is simulated from an admin connection with
// ALTER DATABASE ... ALLOW_CONNECTIONS false and pg_terminate_backend. Creates and commands answer
// 503 store_unavailable with Retry-After, /readyz 503, /healthz 200; acknowledged jobs are kept, and
// once connections are allowed again the same process recovers alone and delivers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createJob, getJob, waitForStatus } from './support/jobs.js';
import { createTestDatabase, PG_SERVER_URL, postgresAvailable, type TestDatabase } from './support/postgres.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from './support/service.js';

const LATER = new Date(Date.now() + 3_600_000).toISOString();

async function expectStoreUnavailable(res: Response, what: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 503, `${what}: ${text}`);
  assert.equal(res.headers.get('retry-after'), '5', what);
  assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'store_unavailable', what);
}

if (await postgresAvailable('PostgreSQL store faults')) {
  describe('PostgreSQL store faults (database unreachable)', () => {
    let db: TestDatabase;
    let rx: Receiver;
    let svc: TestService;
    let admin: pg.Client;
    const allow = (on: boolean) => admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS ${on ? 'true' : 'false'}`);

    before(async () => {
      db = await createTestDatabase();
      rx = await startReceiver();
      admin = new pg.Client({ connectionString: PG_SERVER_URL });
      await admin.connect();
      svc = await startTestService({
        DATABASE_URL: db.url,
        SCHEDULER_POLL_INTERVAL_MS: '50',
        PG_POOL_MAX: '4',
        PG_CONNECT_TIMEOUT_MS: '1000',
        PG_STATEMENT_TIMEOUT_MS: '2000',
      });
    });
    after(async () => {
      if (admin && db) await allow(true).catch(() => undefined);
      await svc?.cleanup();
      await admin?.end();
      await rx?.close();
      await db?.drop();
    });

    it('answers 503 store_unavailable during the outage, loses nothing acknowledged, and recovers without a restart', async () => {
      assert.equal(svc.store.driver, 'postgres');
      const kept = await createJob(svc, jobBody(`${rx.url}/kept`, { run_at: LATER }));
      const delivered = await createJob(svc, jobBody(`${rx.url}/before`));
      await waitForStatus(svc, delivered.id, 'success');

      // the outage: no new sessions, and every open one (the pool's, the listener's) ended
      await allow(false);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db.name]);

      await expectStoreUnavailable(await svc.post('/v1/jobs', jobBody(`${rx.url}/during`)), 'create');
      await expectStoreUnavailable(await svc.post('/v1/jobs/batch', { jobs: [jobBody(`${rx.url}/during`), jobBody(`${rx.url}/during`)] }), 'batch');
      await expectStoreUnavailable(await svc.post(`/v1/jobs/${kept.id}/cancel`, {}), 'cancel');
      await expectStoreUnavailable(await svc.post(`/v1/jobs/${delivered.id}/retry`, {}), 'retry');
      await expectStoreUnavailable(await svc.post('/v1/jobs/cancel', { tenant_id: 'demo' }), 'bulk cancel');
      await expectStoreUnavailable(await svc.post('/v1/dlq/retry', { tenant_id: 'demo' }), 'bulk retry');
      const ready = await svc.get('/readyz');
      assert.equal(ready.status, 503);
      assert.match(((await ready.json()) as { checks: { store: string } }).checks.store, /failing/);
      assert.equal((await svc.get('/healthz')).status, 200);

      // the database is back: the same process answers again, alone
      await allow(true);
      await eventually(async () => (await svc.get('/readyz')).status === 200, 15_000, 100);
      const after = await createJob(svc, jobBody(`${rx.url}/after`));
      await waitForStatus(svc, after.id, 'success');
      assert.equal((await getJob(svc, kept.id)).status, 'scheduled', 'acknowledged before the outage, still there');
      assert.equal((await getJob(svc, delivered.id)).status, 'success');
      assert.equal(rx.requests.filter((r) => r.url === '/after').length, 1);
      assert.equal(rx.requests.filter((r) => r.url === '/during').length, 0, 'nothing refused was delivered');
      const check = new pg.Client({ connectionString: db.url });
      await check.connect();
      try {
        const { rows } = await check.query<{ n: string }>("SELECT count(*) AS n FROM jobs WHERE dest_url LIKE '%/during'");
        assert.equal(Number(rows[0]?.n), 0, 'no job refused with 503 was written');
      } finally {
        await check.end();
      }
    });
  });
}
