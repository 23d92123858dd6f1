// Three PulseGate processes on one PostgreSQL database, over real HTTP, one of them SIGKILLed in the
// middle of the load. What must hold (issue 14): every 201 is delivered; a job is delivered twice
// only if the dead instance had it in flight; the dead instance's jobs are taken over once their
// leases expire, not before and not much after.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createTestDatabase, postgresAvailable, type TestDatabase } from './support/postgres.js';
import { spawnService, stopAll, type ServiceProcess } from './support/process.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { eventually, jobBody } from './support/service.js';

const LEASE_MS = 3000;
const POLL_MS = 200;
const CONCURRENCY = 4; // attempts in flight per instance: what a kill can leave half-done
const JOBS = 300;
const SLACK_MS = 10_000;

if (await postgresAvailable('three instances on PostgreSQL')) {
  describe('three instances on one PostgreSQL database, one SIGKILLed mid-load', () => {
    let db: TestDatabase;
    let rx: Receiver;
    let sql: pg.Client;
    const instances: ServiceProcess[] = [];

    before(async () => {
      db = await createTestDatabase();
      rx = await startReceiver(async (_req, res) => {
        await sleep(100); // slow enough that some attempts are in flight when the kill comes
        res.writeHead(200).end('ok');
      });
      const env = {
        DATABASE_URL: db.url,
        LEASE_MS: String(LEASE_MS),
        SCHEDULER_POLL_INTERVAL_MS: String(POLL_MS),
        WORKER_CONCURRENCY: String(CONCURRENCY),
        PG_POOL_MAX: '4',
        SHUTDOWN_TIMEOUT_MS: '2000',
      };
      // one after the other: the first applies the migrations (the others would wait on its lock anyway)
      for (let i = 0; i < 3; i++) instances.push(await spawnService(env));
      sql = new pg.Client({ connectionString: db.url });
      await sql.connect();
    });
    after(async () => {
      await stopAll(instances);
      await sql?.end();
      await rx?.close();
      await db?.drop();
    });

    it('delivers every 201 at least once, twice only what the dead instance had in flight, and takes its jobs over after their leases', async () => {
      const acked = new Set<string>();
      let next = 0;
      // 12 clients create the jobs round-robin over the three instances; a create sent to the dead
      // instance fails (no 201, nothing promised) and the client goes on with the next job
      const clients = Array.from({ length: 12 }, async () => {
        for (let i = next++; i < JOBS; i = next++) {
          const on = instances[i % 3] as ServiceProcess;
          try {
            const res = await fetch(`${on.url}/v1/jobs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(jobBody(`${rx.url}/hook`, { payload: { i }, retry: { max_attempts: 10, base_delay_ms: 50, max_delay_ms: 200 } })),
            });
            if (res.status === 201) acked.add(((await res.json()) as { id: string }).id);
            else await res.body?.cancel();
          } catch {
            // the victim is gone
          }
        }
      });

      // mid-load: most jobs created (the rest still coming), deliveries under way on every instance
      await eventually(async () => acked.size >= JOBS * 0.8 && rx.requests.length >= 30, 20_000, 1);
      const ackedAtKill = acked.size;
      // the victim: the instance holding the destination (one instance at a time delivers it, see
      // test/postgres-lanes.test.ts), so that what it held must be taken over
      const holder = (await sql.query<{ owner: string }>('SELECT owner FROM destination_leases WHERE owner IS NOT NULL')).rows[0]?.owner ?? '';
      const victim = instances.find((p) => holder.includes(`:${p.child.pid}:`));
      assert.ok(victim, `an instance holds the destination (${holder})`);
      const survivors = instances.filter((p) => p !== victim);
      victim.child.kill('SIGKILL');
      assert.equal((await victim.exited).signal, 'SIGKILL');
      const killedAt = Date.now(); // nothing from the victim can reach the receiver after this
      // what the victim held when it died: its pid is in its owner name (host:pid:random)
      const heldRows = (
        await sql.query<{ id: string; lease_expires_at: string }>(
          `SELECT id, lease_expires_at FROM jobs WHERE lease_owner LIKE $1`,
          [`%:${victim.child.pid}:%`],
        )
      ).rows;
      const held = new Map(heldRows.map((r) => [r.id, Number(r.lease_expires_at)]));
      await Promise.all(clients);
      assert.ok(held.size > 0, 'the kill came while the victim still held jobs');
      assert.ok(acked.size > JOBS / 2, `${acked.size} jobs answered 201`);

      // every 201 reaches the receiver, and the database records it delivered
      await eventually(async () => {
        const seen = new Set(rx.requests.map((r) => String(r.headers['webhook-id'])));
        return [...acked].every((id) => seen.has(id)) && [...held.keys()].every((id) => seen.has(id));
      }, LEASE_MS + POLL_MS + SLACK_MS + 10_000, 50);
      const doneIds = await eventually(async () => {
        const { rows } = await sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM jobs WHERE id = ANY($1::text[]) AND status = 'success'`,
          [[...acked]],
        );
        return rows[0]?.n === acked.size ? rows[0].n : null;
      }, 10_000, 50);
      assert.equal(doneIds, acked.size);

      const byId = new Map<string, number[]>();
      for (const r of rx.requests) {
        const id = String(r.headers['webhook-id']);
        byId.set(id, [...(byId.get(id) ?? []), r.at]);
      }

      // a second delivery only for a job the victim held, first sent before it died
      const duplicated = [...byId].filter(([, at]) => at.length > 1);
      for (const [id, at] of duplicated) {
        assert.ok(held.has(id), `${id} delivered ${at.length} times was held by the victim`);
        assert.ok((at[0] as number) <= killedAt, `${id}: its first delivery came before the kill`);
        assert.equal(at.length, 2, `${id}: delivered again once, not more`);
      }
      // in flight, or answered with its result not yet committed (the group commit waits a few ms)
      assert.ok(duplicated.length <= 2 * CONCURRENCY, `${duplicated.length} duplicates, at most ${2 * CONCURRENCY}`);

      // the victim's jobs: taken over only once their leases expired, the first within lease + poll +
      // slack; then one survivor delivers the destination (lanes across instances) at its pace, at most
      // CONCURRENCY attempts of 100 ms at a time, so the last comes that much later
      let first = Infinity;
      let latest = 0;
      for (const [id, expiresAt] of held) {
        const after = (byId.get(id) ?? []).filter((t) => t > killedAt);
        assert.equal(after.length, 1, `${id} held by the victim is delivered once after the kill`);
        const at = after[0] as number;
        assert.ok(at >= expiresAt, `${id} redelivered ${expiresAt - at} ms before its lease expired`);
        first = Math.min(first, at - killedAt);
        latest = Math.max(latest, at - killedAt);
      }
      assert.ok(first <= LEASE_MS + POLL_MS + SLACK_MS, `took ${first} ms to take the victim's jobs over`);
      const pace = Math.ceil(held.size / CONCURRENCY) * 100;
      assert.ok(latest <= LEASE_MS + POLL_MS + SLACK_MS + pace, `took ${latest} ms to deliver the victim's jobs (${pace} ms of work)`);

      console.log(
        `# cluster: ${acked.size} acked (${ackedAtKill} at the kill), victim held ${held.size} at the kill, ${duplicated.length} delivered twice,` +
          ` the first of them delivered again ${first} ms after the kill, the last ${latest} ms (lease ${LEASE_MS} ms, poll ${POLL_MS} ms)`,
      );
      // the survivors keep serving
      for (const p of survivors) assert.equal((await fetch(`${p.url}/readyz`)).status, 200);
    });
  });
}
