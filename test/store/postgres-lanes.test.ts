// Destination leases on PostgreSQL (src/store/postgres/lanes.ts): what makes one instance at a time
// deliver a destination. Two stores (each its own pool, as two instances have), lane leases on.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { NewJob } from '../../src/domain/job.js';
import { migratePg, PG_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { createPool } from '../../src/store/postgres/pool.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { LaneSync } from '../../src/store/store.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { newJob } from './store-contract.js';

const NOW = 1_750_000_000_000;
const LEASE = 30_000;
const A = 'https://a.example';
const B = 'https://b.example';

const to = (origin: string, over: Partial<NewJob> = {}) =>
  newJob(NOW, { destination: { url: `${origin}/hook`, method: 'POST', timeout_ms: 5000, headers: {} }, ...over });
const originsOf = (jobs: { destination: { url: string } }[]) => [...new Set(jobs.map((j) => new URL(j.destination.url).origin))].sort();
const lane = (origin: string, keep: boolean, over: Partial<LaneSync> = {}): LaneSync => ({
  tenant_id: 'tenant-a',
  origin,
  keep,
  circuit: 'closed',
  failures: 0,
  open_until: 0,
  cooldown_ms: null,
  tokens: null,
  tokens_at: null,
  ...over,
});

if (await postgresAvailable('PostgreSQL destination leases')) {
  describe('PostgreSQL destination leases: one instance at a time delivers a destination', () => {
    let db: TestDatabase;
    let x: PostgresStore;
    let y: PostgresStore;

    before(async () => {
      db = await createTestDatabase();
      x = openPostgresStore({ connectionString: db.url, max: 4, laneLeases: true });
      y = openPostgresStore({ connectionString: db.url, max: 4, laneLeases: true });
      await x.migrate();
    });
    beforeEach(async () => {
      await x.pool.query('DELETE FROM attempts; DELETE FROM jobs; DELETE FROM destination_leases');
    });
    after(async () => {
      await x?.close();
      await y?.close();
      await db?.drop();
    });

    it('holds the destinations a claim takes jobs from; another owner skips them until the lease runs out', async () => {
      await x.createJobs([to(A), to(A), to(A)], NOW);
      const first = await x.claimDue('x', NOW, LEASE, 1);
      assert.deepEqual(originsOf(first), [A]);
      await x.createJobs([to(B)], NOW);
      const other = await y.claimDue('y', NOW, LEASE, 10);
      assert.deepEqual(originsOf(other), [B], 'y takes only the destination nobody holds');
      assert.equal(await y.nextDueAt('y', NOW), null, 'nothing y may claim is waiting: it does not wake for x\'s destination');
      assert.equal(await y.nextDueAt(), NOW, 'without an owner: every waiting job');
      assert.equal((await x.claimDue('x', NOW, LEASE, 10)).length, 2, 'x takes the rest of its destination');

      await x.createJobs([to(A)], NOW + LEASE);
      assert.deepEqual(await y.claimDue('y', NOW + LEASE, LEASE, 10), [], 'held until its expiry, inclusive');
      const late = await y.claimDue('y', NOW + LEASE + 1, LEASE, 10);
      assert.deepEqual(originsOf(late), [A], 'an expired destination goes to the next claim');
      assert.deepEqual(await x.claimDue('x', NOW + LEASE + 1, LEASE, 10), []);
    });

    it('lets one of two owners claiming one free destination at once have it, however they interleave', async () => {
      for (let round = 0; round < 20; round++) {
        await x.pool.query('DELETE FROM jobs; DELETE FROM destination_leases');
        await x.createJobs(Array.from({ length: 10 }, () => to(A)), NOW);
        const [cx, cy] = await Promise.all([x.claimDue('x', NOW, LEASE, 3), y.claimDue('y', NOW, LEASE, 3)]);
        assert.ok(cx.length === 0 || cy.length === 0, `round ${round}: x took ${cx.length}, y took ${cy.length}`);
        assert.equal(cx.length + cy.length, 3, `round ${round}: the winner took its claim`);
      }
    });

    it('renews what an owner keeps, gives up the rest with its state, and hands that state to the next owner', async () => {
      await x.createJobs([to(A), to(B)], NOW);
      assert.equal((await x.claimDue('x', NOW, LEASE, 10)).length, 2);
      const open = { circuit: 'open' as const, failures: 5, open_until: NOW + 60_000, cooldown_ms: 10_000, tokens: 1.5, tokens_at: NOW + 10 };
      const kept = await x.syncLanes('x', NOW + 20_000, LEASE, [lane(A, true), lane(B, false, open)]);
      assert.deepEqual(kept, [{ tenant_id: 'tenant-a', origin: A }]);

      await x.createJobs([to(A), to(B)], NOW + 40_000);
      const taken = await y.claimDue('y', NOW + 40_000, LEASE, 10);
      assert.deepEqual(originsOf(taken), [B], 'A was renewed until NOW + 50 s; B was given up');
      const [state] = await y.loadLanes([{ tenant_id: 'tenant-a', origin: B }]);
      assert.deepEqual(state, { tenant_id: 'tenant-a', origin: B, ...open }, 'the circuit and the bucket as x left them');

      assert.deepEqual(await x.syncLanes('x', NOW + 41_000, LEASE, [lane(B, true)]), [], 'x cannot keep what y holds now');
      assert.deepEqual(await y.syncLanes('y', NOW + 41_000, LEASE, [lane(B, true)]), [{ tenant_id: 'tenant-a', origin: B }]);
    });

    it('gives up every destination an owner holds that it does not list', async () => {
      await x.createJobs([to(A), to(B)], NOW);
      await x.claimDue('x', NOW, LEASE, 10);
      assert.deepEqual(await x.syncLanes('x', NOW + 1, LEASE, []), []);
      const { rows } = await x.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM destination_leases WHERE owner IS NOT NULL');
      assert.equal(rows[0]?.n, 0);
    });

    it('without lane leases claims ignore them (the contract suite\'s several owners on one destination)', async () => {
      const plain = openPostgresStore({ connectionString: db.url, max: 2 });
      try {
        await x.createJobs([to(A), to(A)], NOW);
        assert.equal((await x.claimDue('x', NOW, LEASE, 1)).length, 1);
        assert.equal((await plain.claimDue('p', NOW, LEASE, 10)).length, 1, 'x holds A, the plain claim takes its job anyway');
        assert.equal(plain.laneLeases, false);
        assert.deepEqual(await plain.loadLanes([{ tenant_id: 'tenant-a', origin: A }]), []);
      } finally {
        await plain.close();
      }
    });
  });

  describe('migration 8: the origin of jobs written before it', () => {
    it('backfills each job\'s destination origin as new URL(url).origin gives it', async () => {
      const db = await createTestDatabase();
      const pool = createPool({ connectionString: db.url, max: 2 });
      try {
        await migratePg(pool, PG_MIGRATIONS.filter((m) => m.version < 8));
        const urls = [
          'https://Example.COM/hook',
          'https://example.com:443/x?y=1',
          'http://example.com:80/',
          'http://example.com:8080/a#f',
          'HTTP://user:pass@Example.com:0081/p',
          'https://[::1]:8443/h',
          'https://[::1]/h',
          'http://example.com?x=1',
        ];
        for (const [i, url] of urls.entries()) {
          await pool.query(
            `INSERT INTO jobs (id, tenant_id, type, status, payload_json, dest_url, dest_method, dest_timeout_ms, dest_headers_json,
               retry_max_attempts, retry_base_delay_ms, retry_max_delay_ms, run_at, due_at, created_at, updated_at)
             VALUES ($1, 't', 'x', 'queued', '{}', $2, 'POST', 1000, '{}', 3, 1000, 60000, 0, 0, 0, 0)`,
            [`j${i}`, url],
          );
        }
        await migratePg(pool);
        const { rows } = await pool.query<{ dest_url: string; origin: string }>('SELECT dest_url, origin FROM jobs ORDER BY id');
        for (const r of rows) assert.equal(r.origin, new URL(r.dest_url).origin, r.dest_url);
      } finally {
        await pool.end();
        await db.drop();
      }
    });
  });
}
