// Two PulseGate processes on one PostgreSQL database, both running the schedule ticker: a schedule
// that ticks every second creates exactly one job per tick, with no tick lost, whichever instance
// gets to it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { spawnService, stopAll, type ServiceProcess } from '../support/process.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually } from '../support/service.js';
import { assertEachTickOnce, everySecondSchedule } from './helpers.js';

const TICKS = 6;

if (await postgresAvailable('schedules on two instances')) {
  describe('a schedule ticking on two instances sharing PostgreSQL', () => {
    let db: TestDatabase;
    let rx: Receiver;
    let sql: pg.Client;
    const instances: ServiceProcess[] = [];

    before(async () => {
      db = await createTestDatabase();
      rx = await startReceiver();
      const env = { DATABASE_URL: db.url, SCHEDULER_POLL_INTERVAL_MS: '200', PG_POOL_MAX: '4', LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_MS: '2000' };
      for (let i = 0; i < 2; i++) instances.push(await spawnService(env));
      sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
    });
    after(async () => {
      await stopAll(instances);
      await sql?.end();
      await rx?.close();
      await db?.drop();
    });

    it('creates each tick of an every-second schedule exactly once', async () => {
      const [a, b] = instances as [ServiceProcess, ServiceProcess];
      const id = await everySecondSchedule(a.url, rx.url);
      const prefix = `schedule:${id}:`;
      const count = async () =>
        Number((await sql.query<{ n: string }>(`SELECT count(*) AS n FROM jobs WHERE idempotency_key LIKE $1`, [`${prefix}%`])).rows[0]?.n ?? 0);
      await eventually(async () => (await count()) >= TICKS, 30_000, 100);
      // paused through the other instance: the two share the schedule, not only its jobs
      const paused = await fetch(`${b.url}/v1/schedules/${id}/pause`, { method: 'POST' });
      assert.equal(paused.status, 200);
      // a round that held the schedule when it was paused may still finish its job
      await new Promise((r) => setTimeout(r, 500));

      const rows = (
        await sql.query<{ key: string; n: string }>(
          `SELECT idempotency_key AS key, count(*) AS n FROM jobs WHERE idempotency_key LIKE $1 GROUP BY idempotency_key ORDER BY 1`,
          [`${prefix}%`],
        )
      ).rows;
      assert.ok(rows.length >= TICKS, `only ${rows.length} ticks`);
      // one job per second from the first tick to the last: none lost
      assertEachTickOnce(rows, id);
      // the debug line of each tick names whether this instance created it or met it already made
      const created = instances.map((p) => p.logs.filter((l) => l.event === 'schedule.tick' && l.schedule_id === id && l.outcome === 'created').length);
      assert.equal(created[0]! + created[1]!, rows.length);
      console.log(`# ${rows.length} ticks, created by instance a: ${created[0]}, b: ${created[1]}`);
    });
  });
}
