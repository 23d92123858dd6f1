// The SQLite driver against a real database file: the shared contract, then what only SQLite has
// (pragmas, the migration ledger, files left by a crashed process, several connections on one file).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, type Migration } from '../../src/store/sqlite/migrations.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { FakeClock } from '../support/fake-clock.js';
import { newJob, storeContract } from './store-contract.js';

const STORE_MODULE = pathToFileURL(join(import.meta.dirname, '../../src/store/sqlite/sqlite-store.ts')).href;

function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pulsegate-sqlite-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

storeContract('sqlite', async () => {
  const { dir, remove } = tempDir();
  const store = openSqliteStore({ path: join(dir, 'jobs.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      remove();
    },
  };
});

interface NodeRun {
  /** Writes a line to the child's stdin. */
  send(line: string): void;
  /** Resolves once the child has written `text` to stdout. */
  saw(text: string): Promise<void>;
  done: Promise<{ stdout: string; stderr: string; code: number | null; signal: string | null }>;
}

/** Runs a module script in a fresh Node process (with tsx), talking to it over stdin/stdout. */
function startNode(script: string, env: Record<string, string>): NodeRun {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: { text: string; resolve: () => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of watchers.splice(0)) {
      if (stdout.includes(w.text)) w.resolve();
      else watchers.push(w);
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ stdout: string; stderr: string; code: number | null; signal: string | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const w of watchers.splice(0)) w.resolve();
      resolve({ stdout, stderr, code, signal });
    });
  });
  return {
    send: (line) => void child.stdin.write(`${line}\n`),
    saw: (text) => new Promise<void>((resolve) => (stdout.includes(text) ? resolve() : watchers.push({ text, resolve }))),
    done,
  };
}

function runNode(script: string, env: Record<string, string>): NodeRun['done'] {
  const run = startNode(script, env);
  run.send('');
  return run.done;
}

describe('SQLite driver', () => {
  let dir: string;
  let remove: () => void;
  let path: string;
  const open: SqliteStore[] = [];
  const clock = new FakeClock();

  function openStore(opts: { synchronous?: 'FULL' | 'NORMAL'; walLimitBytes?: number; checkpointIntervalMs?: number; cacheSizeMb?: number } = {}): SqliteStore {
    const s = openSqliteStore({ path, ...opts });
    open.push(s);
    return s;
  }

  beforeEach(() => {
    ({ dir, remove } = tempDir());
    path = join(dir, 'jobs.db');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    remove();
  });

  it('opens in WAL mode with foreign keys on, a busy timeout, an 8 MB page cache, and commits what it acknowledges at FULL unless told NORMAL', async () => {
    const full = openStore();
    // cache_size in KiB when negative; better-sqlite3's own default would be -16000
    assert.deepEqual(full.settings(), { journal_mode: 'wal', synchronous: 1, durable_synchronous: 2, foreign_keys: 1, busy_timeout: 5000, cache_size: -4096 });
    const normal = openStore({ synchronous: 'NORMAL', cacheSizeMb: 2 });
    assert.equal(normal.settings().durable_synchronous, 1);
    assert.equal(normal.settings().cache_size, -2048);
    assert.equal(full.driver, 'sqlite');
    await full.ping(); // answers before migrate, for /readyz on a fresh file
  });

  it('reports a create committed before its fdatasync has ended, and answers it after (FULL)', async () => {
    const store = openStore();
    await store.migrate();
    const before = store.walSyncs;
    const reader = new Database(path, { readonly: true });
    const seen: { syncs: number; rows: number }[] = [];
    const job = newJob(1000);
    try {
      const [out] = await store.createJobs([job], 1000, () => {
        // another connection sees the job already; the sync of this commit has not ended
        const rows = (reader.prepare('SELECT count(*) AS n FROM jobs WHERE id = ?').get(job.id) as { n: number }).n;
        seen.push({ syncs: store.walSyncs, rows });
      });
      assert.equal(out?.kind, 'created');
    } finally {
      reader.close();
    }
    assert.deepEqual(seen, [{ syncs: before, rows: 1 }], 'committed and visible, not yet synced');
    assert.equal(store.walSyncs, before + 1, 'answered after the sync');
  });

  it('answers a create only after an fdatasync of the WAL at FULL, and never syncs for engine writes', async () => {
    const store = openStore();
    await store.migrate();
    const before = store.walSyncs;
    await store.createJobs([newJob(1000)], 1000);
    assert.equal(store.walSyncs, before + 1, 'the create waited for one sync');
    await store.claimDue('w', 2000, 1000, 10);
    assert.equal(store.walSyncs, before + 1, 'a claim does not sync');
    // concurrent creates share syncs: never more syncs than creates, at least one after the last
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.createJobs([newJob(1000 + i)], 3000)));
    assert.ok(store.walSyncs > before + 1 && store.walSyncs <= before + 21, `syncs: ${store.walSyncs - before}`);
    const normal = openStore({ synchronous: 'NORMAL' });
    await normal.migrate();
    await normal.createJobs([newJob(1000)], 1000);
    assert.equal(normal.walSyncs, 0);
  });

  it('commits the creates that arrive while an fdatasync runs in one transaction when it ends, each call on its own', async () => {
    const store = openStore();
    await store.migrate();
    const reader = new Database(path, { readonly: true });
    const count = () => (reader.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    try {
      const [commits, syncs] = [store.createCommits, store.walSyncs];
      const first = store.createJobs([newJob(1000)], 1000); // committed now; its fdatasync starts
      const key = { idempotency_key: 'k', idempotency_hash: 'h', idempotency_expires_at: 99_999 };
      const rest = [
        store.createJobs([newJob(1001), newJob(1001)], 1001),
        store.createJobs([newJob(1002, key)], 1002),
        store.createJobs([newJob(1003, key)], 1003), // the same key: a replay of the call before it
        store.createJobs([newJob(5000)], 1004),
      ];
      assert.equal(count(), 1, 'the later calls wait for the running fdatasync, uncommitted');
      const [a, b, c, d, e] = await Promise.all([first, ...rest]);
      assert.deepEqual([a, b, c, d, e].map((o) => o?.map((x) => x.kind)), [['created'], ['created', 'created'], ['created'], ['idempotent_replay'], ['created']]);
      const keyed = d?.[0];
      assert.equal(keyed?.kind === 'idempotent_replay' && keyed.job.id, c?.[0]?.kind === 'created' && c[0].job.id);
      const late = e?.[0];
      assert.equal(late?.kind === 'created' && late.job.status, 'scheduled', "each call's own now (1004) decides, not the commit's");
      assert.equal(count(), 5, 'the replay wrote no job');
      assert.equal(store.createCommits - commits, 2, 'two transactions: the first call, then the four that waited');
      assert.equal(store.walSyncs - syncs, 2);
    } finally {
      reader.close();
    }
  });

  it('rejects every create of a deferred commit that fails, and writes none of them', async () => {
    const store = openStore();
    await store.migrate();
    const first = store.createJobs([newJob(1000)], 1000);
    store.setMaxPageCount(store.pageCount()); // a full disk, as SQLite reports one
    const big = (n: number) => newJob(1001, { payload_json: JSON.stringify({ n, pad: 'x'.repeat(200_000) }) });
    const rest = [store.createJobs([big(1)], 1001), store.createJobs([newJob(1001)], 1001)];
    assert.equal((await first)[0]?.kind, 'created');
    const settled = await Promise.allSettled(rest);
    assert.deepEqual(settled.map((r) => r.status), ['rejected', 'rejected']);
    assert.match(String((settled[0] as PromiseRejectedResult).reason), /full/i);
    store.setMaxPageCount(1_073_741_823);
    assert.equal((await store.listJobs({}, 10, null)).data.length, 1, 'nothing of the failed commit was written');
    assert.equal((await store.createJobs([newJob(2000)], 2000))[0]?.kind, 'created', 'the next create commits');
  });

  it('commits each create at once when another connection in the process writes the file too', async () => {
    const store = openSqliteStore({ path, checkpoints: 'elsewhere' });
    open.push(store);
    await store.migrate();
    const commits = store.createCommits;
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.createJobs([newJob(1000 + i)], 1000)));
    assert.equal(store.createCommits - commits, 5, 'no commit deferred past the call, which holds the write lock');
  });

  it('checkpoints the WAL from a worker thread, never inside its own commits', async () => {
    const store = openStore();
    await store.migrate();
    const db = (store as unknown as { db: Database.Database }).db;
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0, 'no checkpoint inside a commit');
    const path = db.name;
    const before = statSync(path).size;
    for (let b = 0; b < 10; b++) {
      await store.createJobs(Array.from({ length: 500 }, (_, i) => newJob(1000 + b * 500 + i, { payload_json: JSON.stringify({ pad: 'x'.repeat(500) }) })), 5000);
    }
    // only a checkpoint copies pages into the database file: the worker's does within its interval
    const grew = await (async () => {
      for (let i = 0; i < 40; i++) {
        if (statSync(path).size > before + 1_000_000) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    })();
    assert.ok(grew, `database file ${statSync(path).size} bytes, was ${before}`);
  });

  it('keeps the WAL bounded under a steady write load: the log starts over and is cut back', async () => {
    // A PASSIVE checkpoint never catches up with a writer that never pauses, and SQLite only starts
    // the WAL over once every frame is copied: without the store finishing the checkpoint, this
    // loop grows the WAL by hundreds of megabytes (seen: 10.7 GB after 800,000 creates).
    const limit = 1 << 20;
    const store = openStore({ synchronous: 'NORMAL', walLimitBytes: limit, checkpointIntervalMs: 20 });
    await store.migrate();
    const db = (store as unknown as { db: Database.Database }).db;
    assert.equal(db.pragma('journal_size_limit', { simple: true }), limit);
    const wal = `${path}-wal`;
    let written = 0;
    let largest = 0;
    let startedOver = 0;
    let previous = 0;
    const until = Date.now() + 1500;
    for (let round = 0; round < 100_000 && Date.now() < until; round++) {
      const now = 1000 + round;
      await store.createJobs(Array.from({ length: 20 }, (_, i) => newJob(now, { run_at: now + 3_600_000, payload_json: JSON.stringify({ round, i }) })), now);
      written += 20;
      await new Promise((r) => setImmediate(r)); // let the checkpointer's reports in, as a server's event loop would
      const size = statSync(wal).size;
      if (size < previous) startedOver++;
      previous = size;
      largest = Math.max(largest, size);
    }
    assert.ok(startedOver >= 1, `the WAL never started over (largest ${largest} bytes)`);
    // the start-over above is what tells a finished checkpoint from none; this bound only keeps the
    // log from growing on between them (35.9 MB seen once on a loaded machine, so not 32)
    assert.ok(largest <= 64 * limit, `the WAL reached ${largest} bytes with a limit of ${limit}`);
    assert.equal(db.prepare('SELECT count(*) FROM jobs').pluck().get(), written, 'every committed job is there');
  });

  it('records each migration once and applies nothing on a second run', async () => {
    const store = openStore();
    await store.migrate();
    await store.migrate();
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
      assert.deepEqual(rows, MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      db.close();
    }
    const direct = new Database(path);
    try {
      assert.deepEqual(migrate(direct), []);
    } finally {
      direct.close();
    }
  });

  it('applies only the migrations newer than the database, in version order', () => {
    const db = new Database(path);
    try {
      const m1: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE a (x INTEGER)' };
      const m2: Migration = { version: 2, name: 'two', sql: 'CREATE TABLE b (x INTEGER)' };
      const m3: Migration = { version: 3, name: 'three', sql: 'ALTER TABLE b ADD COLUMN y TEXT' };
      assert.deepEqual(migrate(db, [m1]), [1]);
      assert.deepEqual(migrate(db, [m3, m1, m2]), [2, 3]);
      assert.deepEqual(migrate(db, [m1, m2, m3]), []);
    } finally {
      db.close();
    }
  });

  it('rolls back a failing migration whole and records nothing for it', () => {
    const db = new Database(path);
    try {
      const good: Migration = { version: 1, name: 'good', sql: 'CREATE TABLE a (x INTEGER)' };
      const bad: Migration = { version: 2, name: 'bad', sql: 'CREATE TABLE half (x INTEGER); CREATE TABLE a (x INTEGER);' };
      assert.throws(() => migrate(db, [good, bad]));
      const versions = db.prepare('SELECT version FROM schema_migrations').pluck().all();
      assert.deepEqual(versions, [1]);
      const half = db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'half'").pluck().get();
      assert.equal(half, 0);
    } finally {
      db.close();
    }
  });

  it('refuses a database whose schema is newer than this build', () => {
    const db = new Database(path);
    try {
      migrate(db, [...MIGRATIONS, { version: 999, name: 'future', sql: 'CREATE TABLE future (x INTEGER)' }]);
      assert.throws(() => migrate(db), /newer than this build/);
    } finally {
      db.close();
    }
  });

  it('keeps jobs and attempts across close and reopen', async () => {
    const first = openStore();
    await first.migrate();
    const input = newJob(clock.now(), { payload_json: '{"keep": true}' });
    await first.createJobs([input], clock.now());
    await first.claimDue('w1', clock.now(), 30_000, 10);
    await first.markRunning([input.id], 'w1', clock.now());
    await first.completeAttempts(
      [
        {
          attempt: {
            job_id: input.id, attempt: 1, started_at: clock.now(), finished_at: clock.now() + 5, duration_ms: 5,
            outcome: 'success', error_kind: null, status_code: 204, error: null, response_body: null,
          },
          owner: 'w1',
          next: { status: 'success' },
        },
      ],
      clock.now() + 5,
    );
    const before = await first.getJob(input.id);
    await first.close();

    const second = openStore();
    await second.migrate();
    assert.deepEqual(await second.getJob(input.id), before);
    assert.equal((await second.listAttempts(input.id)).length, 1);
  });

  it('reads the jobs a crashed writer committed', async () => {
    const jobs = Array.from({ length: 50 }, () => newJob(clock.now()));
    const script = `
      import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
      const store = openSqliteStore({ path: process.env.DB_PATH });
      await store.migrate();
      const jobs = JSON.parse(process.env.JOBS);
      await store.createJobs(jobs.slice(0, 25), ${clock.now()});
      await store.createJobs(jobs.slice(25), ${clock.now()});
      process.kill(process.pid, 'SIGKILL');
    `;
    const r = await runNode(script, { DB_PATH: path, JOBS: JSON.stringify(jobs) });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    // The commits are still in the write-ahead log: nothing checkpointed or closed them.
    assert.ok(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0, 'a WAL file was left behind');

    const store = openStore();
    await store.migrate();
    const page = await store.listJobs({}, 100, null);
    assert.equal(page.data.length, 50);
    assert.deepEqual(
      page.data.map((j) => j.id).sort(),
      jobs.map((j) => j.id).sort(),
    );
    assert.equal((await store.countByStatus()).queued, 50);
  });

  it('claims each job once across two connections to one file', async () => {
    const a = openStore();
    const b = openStore();
    await a.migrate();
    await b.migrate();
    const inputs = Array.from({ length: 200 }, (_, i) => newJob(clock.now() - (i % 13)));
    await a.createJobs(inputs, clock.now());
    const seen = new Map<string, string>();
    for (let round = 0; round < 50; round++) {
      for (const [owner, s] of [['a', a], ['b', b]] as const) {
        for (const j of await s.claimDue(owner, clock.now(), 30_000, 3)) {
          assert.ok(!seen.has(j.id), `job ${j.id} claimed by ${seen.get(j.id)} and ${owner}`);
          seen.set(j.id, owner);
        }
      }
    }
    assert.equal(seen.size, 200);
  });

  it('claims each job once across two processes claiming at the same time', async () => {
    const store = openStore();
    await store.migrate();
    const total = 1000;
    const inputs = Array.from({ length: total }, () => newJob(clock.now()));
    for (let i = 0; i < total; i += 500) await store.createJobs(inputs.slice(i, i + 500), clock.now());

    const script = (owner: string) => `
      import { once } from 'node:events';
      import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
      const store = openSqliteStore({ path: process.env.DB_PATH });
      await store.ping();
      process.stdout.write('ready;');
      await once(process.stdin, 'data'); // both start claiming together
      const ids = [];
      for (;;) {
        const claimed = await store.claimDue(${JSON.stringify(owner)}, ${clock.now()}, 30000, 5);
        if (claimed.length === 0) break;
        await store.markRunning(claimed.map((j) => j.id), ${JSON.stringify(owner)}, ${clock.now()});
        ids.push(...claimed.map((j) => j.id));
        await new Promise((r) => setTimeout(r, 1)); // a dispatcher does work between claims
      }
      await store.close();
      process.stdout.write(JSON.stringify(ids));
      process.exit(0);
    `;
    const runs = [startNode(script('p'), { DB_PATH: path }), startNode(script('q'), { DB_PATH: path })];
    await Promise.all(runs.map((r) => r.saw('ready;')));
    for (const r of runs) r.send('go');
    const [p, q] = await Promise.all(runs.map((r) => r.done));
    assert.ok(p && q);
    const parse = (out: string) => JSON.parse(out.slice('ready;'.length)) as string[];
    assert.equal(p.code, 0, p.stderr);
    assert.equal(q.code, 0, q.stderr);
    const pIds = parse(p.stdout);
    const qIds = parse(q.stdout);
    assert.ok(pIds.length > 0 && qIds.length > 0, `both processes claimed (p ${pIds.length}, q ${qIds.length})`);
    const both = new Set([...pIds, ...qIds]);
    assert.equal(pIds.length + qIds.length, total, 'no job claimed twice');
    assert.equal(both.size, total, 'every job claimed');
    assert.equal((await store.countByStatus()).running, total);
  });
});
