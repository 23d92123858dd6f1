// Ordering keys across two PulseGate processes on one PostgreSQL database (issue 16): each key's
// jobs are created alternately on both instances (the next after the 201 of the one before), so
// both write every key's line, and still every key's jobs reach a receiver failing 20% at random
// one at a time, in creation order, while jobs without a key flow meanwhile. The receiver is one
// destination (tenant, origin): with destination leases one instance at a time delivers it, and
// the other takes it over when that one lets it go; which one delivers is not asserted.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from './support/postgres.js';
import { spawnService, stopAll, type ServiceProcess } from './support/process.js';
import { orderingLoad, type OrderingLoad } from './support/ordering-load.js';

if (await postgresAvailable('ordering keys on two instances')) {
  describe('ordering keys on two instances sharing PostgreSQL', () => {
    let db: TestDatabase;
    let load: OrderingLoad;
    const instances: ServiceProcess[] = [];

    before(async () => {
      db = await createTestDatabase();
      load = await orderingLoad();
      const env = { DATABASE_URL: db.url, WORKER_CONCURRENCY: '16', PG_POOL_MAX: '4', SCHEDULER_POLL_INTERVAL_MS: '500' };
      for (let i = 0; i < 2; i++) instances.push(await spawnService(env));
    });
    after(async () => {
      await stopAll(instances);
      await load?.close();
      await db?.drop();
    });

    it('delivers each key in creation order, one at a time, with jobs created on both instances', async () => {
      await load.run(instances.map((p) => p.url), 180_000);
      load.check();
      // the attempts, whichever instance made them (pulsegate_attempts_total on each one's /metrics)
      let made = 0;
      for (const p of instances) {
        const text = await (await fetch(`${p.url}/metrics`)).text();
        made += text.split('\n').filter((l) => l.startsWith('pulsegate_attempts_total')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      }
      assert.ok(made >= 50 * 40 + 200, `attempts made: ${made}`);
      const sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
      try {
        const { rows } = await sql.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM jobs GROUP BY status`);
        assert.deepEqual(rows, [{ status: 'success', n: 50 * 40 + 200 }]);
      } finally {
        await sql.end();
      }
    });
  });
}
