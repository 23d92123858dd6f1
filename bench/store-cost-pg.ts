// The PostgreSQL store's own cost per job, with no HTTP around it: the statements the service runs
// per job and what each costs the client (wall time) and the server (the backend's CPU, from /proc),
// and the WAL each writes. On a fresh database (dropped after) of the server at 127.0.0.1:5432
// (PG_BENCH_URL overrides), through the PostgreSQL driver with one pooled connection, in the batch
// sizes the service uses, as `npm run bench:store` does for SQLite:
//   create    jobs due in an hour, 64 per transaction, dedupe on (the default)
//   claim     64 per claim
//   result    16 results per statement
//   create 1  one job per transaction, due now and held (claim at insert, as a create at a low rate)
// Then the NOTIFY lock: one-job creates of jobs nobody holds from 8 connections at once, with the
// wake-up (PG_NOTIFY=true: pg_notify in the insert's statement) and without it. A transaction that
// has notified takes a lock shared by the whole server while it commits, so those commits (and
// their WAL flushes) go one at a time.
// WAL is the server's (pg_current_wal_lsn): other databases' writes meanwhile count too. Each
// figure is the median of the rounds. Usage: npm run bench:store:pg -- [--jobs N] [--rounds R]

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { NewJob } from '../src/domain/job.js';
import { openPostgresStore, type PostgresStore } from '../src/store/postgres/postgres-store.js';
import { createDatabase, postgresUnreachable, type BenchDatabase } from './lib/postgres.js';
import { newJobs, success } from './lib/jobs.js';
import { median } from './lib/stats.js';
import { cpuMs } from './lib/sys.js';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' }, 'notify-jobs': { type: 'string', default: '4000' } },
});
const N = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const NOTIFY_JOBS = Number(values['notify-jobs']);
const NOTIFY_CONNECTIONS = 8;
const OWNER = 'bench';


/** Client wall time, the backend's CPU and the server's WAL, each per job, for fn over n jobs. */
interface Cost {
  wall_us: number;
  server_us: number;
  wal_bytes: number;
}

async function walLsn(store: PostgresStore): Promise<number> {
  const { rows } = await store.pool.query<{ b: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS b");
  return Number(rows[0]?.b);
}

async function measure(store: PostgresStore, backendPid: number, n: number, fn: () => Promise<void>): Promise<Cost> {
  const wal0 = await walLsn(store);
  const cpu0 = cpuMs(backendPid) ?? NaN;
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const cpu1 = cpuMs(backendPid) ?? NaN;
  const wal1 = await walLsn(store);
  return { wall_us: (wall * 1000) / n, server_us: ((cpu1 - cpu0) * 1000) / n, wal_bytes: (wal1 - wal0) / n };
}

interface Round {
  create: Cost;
  claim: Cost;
  result: Cost;
  create1: Cost;
  /** Bytes per stored job after the creates: the jobs table with its indexes, and the dedupe records. */
  stored_jobs_bytes: number;
  stored_keys_bytes: number;
  /** One-job creates per second from 8 connections, with and without pg_notify. */
  notify_per_s: number;
  quiet_per_s: number;
}

async function concurrentCreates(db: BenchDatabase, notify: boolean, now: number): Promise<number> {
  const store = openPostgresStore({ connectionString: db.url, max: NOTIFY_CONNECTIONS, notify });
  try {
    const jobs = newJobs(NOTIFY_JOBS, now, now, notify ? 'notify' : 'quiet');
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: NOTIFY_CONNECTIONS }, async () => {
        while (next < jobs.length) await store.createJobs([jobs[next++] as NewJob], now);
      }),
    );
    return NOTIFY_JOBS / ((performance.now() - t0) / 1000);
  } finally {
    await store.close();
  }
}

async function round(r: number): Promise<Round> {
  const db = await createDatabase(`pgbench_storecost_${process.pid}_${r}`);
  try {
    const store = openPostgresStore({ connectionString: db.url, max: 1, notify: false });
    let out: Omit<Round, 'notify_per_s' | 'quiet_per_s'>;
    try {
      await store.migrate();
      const pid = (await store.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
      const now = Date.now();
      const jobs = newJobs(N, now, now + 3_600_000, 'batch');
      const later = now + 3_600_001;
      const create = await measure(store, pid, N, async () => {
        for (let i = 0; i < N; i += 64) await store.createJobs(jobs.slice(i, i + 64), now);
      });
      const size = await store.pool.query<{ jobs: string; keys: string }>(
        "SELECT pg_total_relation_size('jobs') AS jobs, pg_total_relation_size('dedupe_keys') AS keys",
      );
      const storedBytes = { jobs: Number(size.rows[0]?.jobs) / N, keys: Number(size.rows[0]?.keys) / N };
      const claimed: string[] = [];
      const claim = await measure(store, pid, N, async () => {
        for (;;) {
          const c = await store.claimDue(OWNER, later, 3_600_000, 64);
          if (c.length === 0) break;
          for (const j of c) claimed.push(j.id);
        }
      });
      if (claimed.length !== N) throw new Error(`claimed ${claimed.length} of ${N}`);
      const result = await measure(store, pid, N, async () => {
        for (let i = 0; i < N; i += 16) await store.completeAttempts(claimed.slice(i, i + 16).map((id) => success(id, later, OWNER)), later);
      });
      const single = newJobs(1000, later, later, 'single').map((j) => ({ ...j, lease: { owner: OWNER, expires_at: later + 60_000 } }));
      const create1 = await measure(store, pid, single.length, async () => {
        for (const j of single) await store.createJobs([j], later);
      });
      out = { create, claim, result, create1, stored_jobs_bytes: storedBytes.jobs, stored_keys_bytes: storedBytes.keys };
    } finally {
      await store.close();
    }
    // alternating which goes first, round by round
    const now = Date.now();
    const first = r % 2 === 0;
    const a = await concurrentCreates(db, first, now);
    const b = await concurrentCreates(db, !first, now);
    return { ...out, notify_per_s: first ? a : b, quiet_per_s: first ? b : a };
  } finally {
    await db.drop();
  }
}

const unreachable = await postgresUnreachable();
if (unreachable) {
  console.error(`bench:store:pg: ${unreachable}`);
  process.exit(1);
}
const load = readFileSync('/proc/loadavg', 'utf8').trim();
const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) rounds.push(await round(r));
const med = (get: (r: Round) => number) => median(rounds.map(get)) ?? Number.NaN;
const all = (get: (r: Round) => number, digits: number) => rounds.map((r) => get(r).toFixed(digits)).join(' / ');
console.log(`PostgreSQL store cost per job, ${N} jobs, median of ${ROUNDS} rounds (rounds in brackets); load average at start ${load}`);
for (const [label, k] of [
  ['create, 64 per transaction', 'create'],
  ['claim, 64 per claim', 'claim'],
  ['result, 16 per statement', 'result'],
  ['create, 1 per transaction', 'create1'],
] as const) {
  console.log(
    `  ${`${label}:`.padEnd(30)} client ${med((r) => r[k].wall_us).toFixed(1)} µs [${all((r) => r[k].wall_us, 1)}], ` +
      `server CPU ${med((r) => r[k].server_us).toFixed(1)} µs [${all((r) => r[k].server_us, 1)}], WAL ${med((r) => r[k].wal_bytes).toFixed(0)} B [${all((r) => r[k].wal_bytes, 0)}]`,
  );
}
console.log(
  `  bytes per stored job:          jobs with indexes ${med((r) => r.stored_jobs_bytes).toFixed(0)} [${all((r) => r.stored_jobs_bytes, 0)}], ` +
    `dedupe records ${med((r) => r.stored_keys_bytes).toFixed(0)} [${all((r) => r.stored_keys_bytes, 0)}]`,
);
console.log(
  `  one-job creates from ${NOTIFY_CONNECTIONS} connections: ${med((r) => r.notify_per_s).toFixed(0)}/s with pg_notify [${all((r) => r.notify_per_s, 0)}], ` +
    `${med((r) => r.quiet_per_s).toFixed(0)}/s without [${all((r) => r.quiet_per_s, 0)}]`,
);
