// PostgreSQL-only rules: what several instances (each its own pool) sharing one database must never
// get wrong, and the driver's migrations and connection settings. Real PostgreSQL, fresh databases.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { BULK_START } from '../../src/domain/bulk.js';
import type { CreateOutcome } from '../../src/domain/job.js';
import { MIGRATION_LOCK_KEY, migratePg, PG_MIGRATIONS, type PgMigration } from '../../src/store/postgres/migrations.js';
import { createPool } from '../../src/store/postgres/pool.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../support/postgres.js';
import { newJob } from './store-contract.js';

const NOW = 1_750_000_000_000;
const HOUR = 3_600_000;

if (await postgresAvailable('PostgreSQL driver: instances sharing a database')) {
  describe('PostgreSQL driver: instances sharing one database', () => {
    let db: TestDatabase;
    let a: PostgresStore;
    let b: PostgresStore;

    before(async () => {
      db = await createTestDatabase();
      a = openPostgresStore({ connectionString: db.url, max: 4 });
      b = openPostgresStore({ connectionString: db.url, max: 4 });
      await a.migrate();
    });
    beforeEach(async () => {
      await a.pool.query('DELETE FROM attempts; DELETE FROM jobs; DELETE FROM idempotency_keys; DELETE FROM dedupe_keys; DELETE FROM bulk_operations');
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await db?.drop();
    });

    it('never lets two instances claim the same job, however their claims interleave', async () => {
      const total = 600;
      const inputs = Array.from({ length: total }, (_, i) => newJob(NOW - (i % 17)));
      for (let i = 0; i < total; i += 200) await a.createJobs(inputs.slice(i, i + 200), NOW);
      const claimedBy = new Map<string, string>();
      const twice: string[] = [];
      // three claim loops per instance, all at once, until nothing is left
      const loop = async (store: PostgresStore, owner: string) => {
        for (let round = 0; round < 1000; round++) {
          const claimed = await store.claimDue(owner, NOW, 30_000, 7);
          if (claimed.length === 0) return;
          for (const j of claimed) {
            if (claimedBy.has(j.id)) twice.push(j.id);
            claimedBy.set(j.id, owner);
          }
          await store.markRunning(claimed.map((j) => j.id), owner, NOW);
        }
      };
      await Promise.all([1, 2, 3].flatMap((n) => [loop(a, `a${n}`), loop(b, `b${n}`)]));
      assert.deepEqual(twice, [], 'no job claimed twice');
      assert.equal(claimedBy.size, total, 'every job claimed');
      const owners = new Set([...claimedBy.values()].map((o) => o[0]));
      assert.deepEqual([...owners].sort(), ['a', 'b'], 'both instances claimed');
      assert.equal((await a.countByStatus()).running, total);
    });

    it('creates one job when two instances receive one idempotency key at once', async () => {
      for (let round = 0; round < 25; round++) {
        const key = { idempotency_key: `k${round}`, idempotency_hash: 'h', idempotency_expires_at: NOW + HOUR };
        const [[x], [y]] = await Promise.all([a.createJobs([newJob(NOW, key)], NOW), b.createJobs([newJob(NOW, key)], NOW)]);
        const kinds = [x?.kind, y?.kind].sort();
        assert.deepEqual(kinds, ['created', 'idempotent_replay'], `round ${round}`);
        assert.equal(jobId(x), jobId(y), 'the replay answers with the created job');
      }
      assert.equal((await a.countByStatus()).queued, 25);
    });

    it('answers a conflict to the instance that brings the same key with another body at the same moment', async () => {
      for (let round = 0; round < 10; round++) {
        const key = { idempotency_key: `c${round}`, idempotency_expires_at: NOW + HOUR };
        const [[x], [y]] = await Promise.all([
          a.createJobs([newJob(NOW, { ...key, idempotency_hash: 'one' })], NOW),
          b.createJobs([newJob(NOW, { ...key, idempotency_hash: 'two' })], NOW),
        ]);
        assert.deepEqual([x?.kind, y?.kind].sort(), ['created', 'idempotency_conflict'], `round ${round}`);
        assert.equal(jobId(x), jobId(y));
      }
    });

    it('deduplicates one dedupe hash received by two instances at once to one job', async () => {
      for (let round = 0; round < 10; round++) {
        const d = { dedupe_hash: `d${round}`, dedupe_expires_at: NOW + HOUR };
        const [[x], [y]] = await Promise.all([a.createJobs([newJob(NOW, d)], NOW), b.createJobs([newJob(NOW, d)], NOW)]);
        assert.deepEqual([x?.kind, y?.kind].sort(), ['created', 'deduplicated'], `round ${round}`);
        assert.equal(jobId(x), jobId(y));
      }
      assert.equal((await a.countByStatus()).queued, 10);
    });

    it('wakes the other instances with the earliest due time of jobs nobody holds, never itself', async () => {
      const seenByA: number[] = [];
      const seenByB: number[] = [];
      const la = await a.listenDue((at) => seenByA.push(at));
      const lb = await b.listenDue((at) => seenByB.push(at));
      try {
        // each listener reports "due now" (0) once it listens: whatever it missed is due by now
        assert.deepEqual([seenByA, seenByB], [[0], [0]]);
        await b.createJobs(
          [
            newJob(NOW, { run_at: NOW + 5000 }),
            newJob(NOW, { run_at: NOW + 3000 }),
            newJob(NOW, { run_at: NOW, lease: { owner: 'b1', expires_at: NOW + 30_000 } }),
          ],
          NOW,
        );
        await until(() => seenByA.length === 2);
        assert.equal(seenByA[1], NOW + 3000, 'the earliest unheld due time; the held job is b\'s own');
        const [held] = await b.createJobs([newJob(NOW, { lease: { owner: 'b1', expires_at: NOW + 30_000 } })], NOW);
        assert.equal(held?.kind, 'created');
        await b.release([jobId(held)!], 'b1', NOW, NOW + 7000);
        await until(() => seenByA.length === 3);
        assert.equal(seenByA[2], NOW + 7000, 'jobs given back wake the others too');
        assert.deepEqual(seenByB, [0], 'an instance never wakes itself');
      } finally {
        await la?.stop();
        await lb?.stop();
      }
    });

    it('settles batches that share keys in opposite orders without a deadlock, one job per key', async () => {
      const keys = Array.from({ length: 20 }, (_, i) => ({ idempotency_key: `o${i}`, idempotency_hash: 'h', idempotency_expires_at: NOW + HOUR }));
      const forward = keys.map((k) => newJob(NOW, k));
      const backward = [...keys].reverse().map((k) => newJob(NOW, k));
      const [x, y] = await Promise.all([a.createJobs(forward, NOW), b.createJobs(backward, NOW)]);
      const created = [...x, ...y].filter((o) => o.kind === 'created').length;
      assert.equal(created, 20);
      assert.equal([...x, ...y].filter((o) => o.kind === 'idempotent_replay').length, 20);
      assert.equal((await a.countByStatus()).queued, 20);
    });

    it('hands ordering keys on across instances while both create behind them and end their heads, never two of a key at once', async () => {
      const KEYS = 5;
      const PER_KEY = 30;
      const created = new Map<string, string[]>(); // key -> job ids in creation order
      const delivered = new Map<string, string[]>();
      const held = new Map<string, string>(); // key -> the job of it some consumer holds
      const overlaps: string[] = [];
      let producing = KEYS;
      // one producer per key: its jobs one after the other, alternately on each instance
      const produce = async (k: number) => {
        const key = `k${k}`;
        for (let i = 0; i < PER_KEY; i++) {
          const store = i % 2 === 0 ? a : b;
          const [out] = await store.createJobs([newJob(NOW, { ordering_key: key, payload_json: `{"k":${k},"i":${i}}` })], NOW);
          assert.ok(out?.kind === 'created');
          created.set(key, [...(created.get(key) ?? []), out.job.id]);
        }
        producing--;
      };
      // one consumer per instance: claim, "deliver", record success with the key
      const consume = async (store: PostgresStore, owner: string) => {
        for (let round = 0; round < 20_000; round++) {
          const done = [...delivered.values()].reduce((n, xs) => n + xs.length, 0);
          if (producing === 0 && done === KEYS * PER_KEY) return;
          const claimed = await store.claimDue(owner, NOW, 30_000, 10);
          if (claimed.length === 0) {
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          for (const j of claimed) {
            const key = j.ordering_key as string;
            if (held.has(key)) overlaps.push(`${key}: ${held.get(key)} and ${j.id}`);
            held.set(key, j.id);
          }
          await new Promise((r) => setTimeout(r, 1));
          for (const j of claimed) {
            const key = j.ordering_key as string;
            delivered.set(key, [...(delivered.get(key) ?? []), j.id]);
            held.delete(key);
          }
          await store.completeAttempts(
            claimed.map((j) => ({
              owner,
              next: { status: 'success' as const },
              ordering: { tenant_id: j.tenant_id, key: j.ordering_key as string },
              attempt: { job_id: j.id, attempt: 1, started_at: NOW, finished_at: NOW, duration_ms: 0, outcome: 'success' as const, error_kind: null, status_code: 200, error: null, response_body: null },
            })),
            NOW,
          );
        }
      };
      await Promise.all([...Array.from({ length: KEYS }, (_, k) => produce(k)), consume(a, 'a'), consume(b, 'b')]);
      assert.deepEqual(overlaps, [], 'never two jobs of a key held at once');
      for (let k = 0; k < KEYS; k++) assert.deepEqual(delivered.get(`k${k}`), created.get(`k${k}`), `k${k} in creation order, none left behind`);
    });

    it('starts a bulk command record once when two instances begin one key at once: the other resumes or conflicts', async () => {
      for (let round = 0; round < 20; round++) {
        const op = { scope: '*', key: `b${round}`, request_hash: 'h', expires_at: NOW + HOUR };
        const other = round % 2 === 0 ? op : { ...op, request_hash: 'other' };
        const [x, y] = await Promise.all([a.beginBulk(op, NOW), b.beginBulk(other, NOW)]);
        const expected = round % 2 === 0 ? ['resumed', 'started'] : ['conflict', 'started'];
        assert.deepEqual([x.kind, y.kind].sort(), expected, `round ${round}`);
      }
    });

    it('acts on each job once when two instances step one bulk command at once', async () => {
      const failed = await failJobs(a, 40);
      const operation = { scope: '*', key: 'replay' };
      await a.beginBulk({ ...operation, request_hash: 'h', expires_at: NOW + HOUR }, NOW);
      const touched: string[] = [];
      const loop = async (store: PostgresStore) => {
        for (let i = 0; i < 100; i++) {
          const r = await store.bulkStep({ action: 'retry', selector: {}, chunk: 3, limit: null, progress: BULK_START, apply: true, operation }, NOW);
          touched.push(...r.jobs.map((j) => j.id));
          if (r.progress.done) return r.progress;
        }
        throw new Error('the walk did not end');
      };
      const [pa, pb] = await Promise.all([loop(a), loop(b)]);
      assert.deepEqual([...touched].sort(), [...failed].sort(), 'every failed job once');
      assert.equal(Math.max(pa.tally.jobs, pb.tally.jobs), 40);
      assert.equal((await a.countByStatus()).queued, 40);
    });

    it('filters by destination origin exactly as new URL(url).origin spells it', async () => {
      const urls = ['https://EXAMPLE.com:443/a', 'https://example.com/b', 'http://example.com:80/c', 'https://example.com:8443/d', 'https://example.com.evil.test/e'];
      const ids = await Promise.all(urls.map(async (url) => (await failJobs(a, 1, url))[0]!));
      const count = async (origin: string) =>
        (await a.bulkStep({ action: 'retry', selector: { origin }, chunk: 100, limit: null, progress: BULK_START, apply: false }, NOW)).jobs.map((j) => j.id).sort();
      assert.deepEqual(await count('https://example.com'), [ids[0]!, ids[1]!].sort());
      assert.deepEqual(await count('http://example.com'), [ids[2]!]);
      assert.deepEqual(await count('https://example.com:8443'), [ids[3]!]);
      assert.deepEqual(await count('https://EXAMPLE.com'), [], 'the origin as URL spells it: lower case');
    });
  });

  describe('PostgreSQL driver: migrations and connections', () => {
    const dbs: TestDatabase[] = [];
    const pools: pg.Pool[] = [];
    const fresh = async () => {
      const d = await createTestDatabase();
      dbs.push(d);
      return d;
    };
    const pool = (url: string, opts: { statementTimeoutMs?: number } = {}) => {
      const p = createPool({ connectionString: url, max: 2, ...opts });
      pools.push(p);
      return p;
    };
    after(async () => {
      for (const p of pools.splice(0)) await p.end();
      for (const d of dbs.splice(0)) await d.drop();
    });

    it('applies each version once when several instances migrate a fresh database at once', async () => {
      const d = await fresh();
      const results = await Promise.all(Array.from({ length: 5 }, () => migratePg(pool(d.url))));
      const versions = PG_MIGRATIONS.map((m) => m.version);
      assert.deepEqual(results.flat().sort(), versions, `applied: ${JSON.stringify(results)}`);
      assert.equal(results.filter((r) => r.length > 0).length, 1, 'one instance applied them, the others found them applied');
      const { rows } = await pool(d.url).query('SELECT version, name FROM schema_migrations ORDER BY version');
      assert.deepEqual(rows, PG_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    });

    it('waits for another instance\'s migration longer than the statement timeout instead of failing the start', async () => {
      const d = await fresh();
      const holder = pool(d.url);
      const client = await holder.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
        const migrating = migratePg(pool(d.url, { statementTimeoutMs: 100 }));
        await new Promise((r) => setTimeout(r, 400)); // well past the 100 ms timeout, still waiting
        await client.query('COMMIT');
        assert.deepEqual(await migrating, PG_MIGRATIONS.map((m) => m.version));
      } finally {
        client.release();
      }
    });

    it('rolls back a failing migration whole, ledger included, and refuses a schema newer than the build', async () => {
      const d = await fresh();
      const p = pool(d.url);
      const good: PgMigration = { version: 1, name: 'good', sql: 'CREATE TABLE a (x INTEGER)' };
      const bad: PgMigration = { version: 2, name: 'bad', sql: 'CREATE TABLE half (x INTEGER); CREATE TABLE a (x INTEGER);' };
      await assert.rejects(migratePg(p, [good, bad]));
      const tables = await p.query("SELECT count(*) AS n FROM pg_tables WHERE tablename IN ('a', 'half', 'schema_migrations')");
      assert.equal(tables.rows[0].n, 0, 'nothing of either version, not even the ledger');
      assert.deepEqual(await migratePg(p, [good]), [1]);
      assert.deepEqual(await migratePg(p, [good, { version: 3, name: 'three', sql: 'CREATE TABLE c (x INTEGER)' }]), [3]);
      await assert.rejects(migratePg(p, [good]), /newer than this build/);
    });

    it('reads BIGINT times as numbers and runs statements under the configured timeout', async () => {
      const d = await fresh();
      const p = pool(d.url, { statementTimeoutMs: 250 });
      const { rows } = await p.query("SELECT 9007199254740991::int8 AS big, current_setting('statement_timeout') AS timeout");
      assert.deepEqual(rows[0], { big: Number.MAX_SAFE_INTEGER, timeout: '250ms' });
      await assert.rejects(p.query('SELECT pg_sleep(5)'), (err: { code?: string }) => err.code === '57014');
      const unlimited = pool(d.url, { statementTimeoutMs: 0 });
      assert.equal((await unlimited.query("SELECT current_setting('statement_timeout') AS t")).rows[0].t, '0');
    });
  });
}

/** Waits for cond, checking every 10 ms, at most 5 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not met within 5 s');
}

/** n jobs failed by one permanent error each, to this destination. Returns their ids. */
async function failJobs(store: PostgresStore, n: number, url = 'https://example.com/hook'): Promise<string[]> {
  const inputs = Array.from({ length: n }, () =>
    newJob(NOW, { destination: { url, method: 'POST', timeout_ms: 5000, headers: {} }, lease: { owner: 'w', expires_at: NOW + 30_000 } }),
  );
  await store.createJobs(inputs, NOW);
  await store.completeAttempts(
    inputs.map((j) => ({
      owner: 'w',
      next: { status: 'failed' as const },
      attempt: {
        job_id: j.id, attempt: 1, started_at: NOW, finished_at: NOW, duration_ms: 1, outcome: 'permanent_error' as const,
        error_kind: 'http' as const, status_code: 400, error: 'HTTP 400', response_body: null,
      },
    })),
    NOW,
  );
  return inputs.map((j) => j.id);
}

function jobId(o: CreateOutcome | undefined): string | undefined {
  if (!o) return undefined;
  return 'job' in o ? o.job.id : o.job_id;
}
