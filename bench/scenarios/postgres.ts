// 7. On PostgreSQL: end to end as scenario 3 (jobs created as fast as the clients can while they
// are delivered, first create request to last delivery), with every party on one PostgreSQL server
// and each side on a fresh database of its own, dropped after:
//   PulseGate, 1 instance   dist/main.js with DATABASE_URL, the load generator's clients posting to it
//   PulseGate, 2 instances  two processes on one database, the clients dealt out between them
//   pg-boss, stock          send() per job, one stock work() worker (see bench/pgboss-peer.ts)
//   pg-boss, send + loop    send() per job, the tuned fetch-many/complete-many loop
//   pg-boss, tuned          insert() of 500 jobs per call (8 calls in flight), the tuned loop
// Deliveries in flight: WORKER_CONCURRENCY per PulseGate instance, the same bound for pg-boss. The
// stock worker is polling-bound (a batch per 0.5 s), so it gets a tenth of the jobs: its rate does
// not depend on the count, and the full count would take minutes. Besides the rates, the CPU of
// every process during the measured part (PostgreSQL's backends for that database and its shared
// auxiliary processes, each PulseGate, the load generator, the receiver, the pg-boss worker, and
// the whole machine) and, per job over the side's whole life, the transactions committed and rows
// written in its database (pg_stat_database, read after its processes stopped) and the WAL the
// server wrote during the measured part (server-wide: other databases' writes count too).

import { join } from 'node:path';
import { atLeast, deliveryFigures, deliveryTimeoutMs, fmt, ratio, type Ctx, type Figures, type Row, type Scenario } from '../lib/context.js';
import { BENCH_DIR } from '../lib/procs.js';
import type { RunningPulseGate } from '../lib/pulsegate.js';
import { createDatabase, postgresCpuShare, type BenchDatabase } from '../lib/postgres.js';
import type { RpcClient } from '../lib/rpc.js';
import { cpuShare } from '../lib/sys.js';
import type { CreateResult, Target } from '../loadgen.js';
import type { PgBossStart } from '../pgboss-peer.js';
import type { ReceiverStats } from '../receiver.js';
import pg from 'pg';

const INSERT_BATCH = 500;
const INSERT_IN_FLIGHT = 8;
/** The stock pg-boss worker gets jobs / STOCK_SHARE (it is polling-bound; see above). */
const STOCK_SHARE = 10;

type SideName = 'pg1' | 'pg2' | 'boss' | 'sendloop' | 'tuned';

interface Side {
  name: SideName;
  who: string;
  run(ctx: Ctx, round: number): Promise<Figures>;
}

const peers = new WeakMap<Ctx, RpcClient>();

/** The pg-boss worker process, started on first use and stopped with every other process. */
async function pgBossPeer(ctx: Ctx): Promise<RpcClient> {
  let peer = peers.get(ctx);
  if (!peer) {
    peer = ctx.procs.spawn('pgboss-peer', join(BENCH_DIR, 'pgboss-peer.ts'), { tsx: true, ipc: true }).rpc!;
    await peer.ready();
    peers.set(ctx, peer);
  }
  return peer;
}

async function onDatabase(url: string, fn: (c: pg.Client) => Promise<Figures>): Promise<Figures> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Per job over the side's whole life: transactions committed and rows written in its database. */
function perJobStats(db: BenchDatabase, jobs: number): Promise<Figures> {
  return onDatabase(db.url, async (c): Promise<Figures> => {
    const { rows } = await c.query<{ xact_commit: string; rows_written: string }>(
      'SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS rows_written FROM pg_stat_database WHERE datname = current_database()',
    );
    const r = rows[0];
    return r ? { commits_per_job: Number(r.xact_commit) / jobs, rows_per_job: Number(r.rows_written) / jobs } : {};
  });
}

const walLsn = (db: BenchDatabase) => onDatabase(db.url, async (c) => ({ lsn: Number((await c.query<{ b: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS b")).rows[0]?.b) }));

interface Measure {
  target: Target;
  n: number;
  /** bulk: insert()/batch calls of INSERT_BATCH instead of one create per job */
  bulk?: boolean;
  db: BenchDatabase;
  /** Processes whose CPU is reported, by figure name. */
  pids: Record<string, number>;
}

/** Warm-up (a tenth, unmeasured), then n jobs created and delivered, with the CPU of every party. */
async function createAndDeliver(ctx: Ctx, who: string, m: Measure): Promise<Figures> {
  const create = (count: number) =>
    m.bulk
      ? ctx.loadgen.call<CreateResult>('bulk', { target: m.target, receiverUrl: ctx.receiverUrl, n: count, batch: INSERT_BATCH, connections: INSERT_IN_FLIGHT }, deliveryTimeoutMs(count))
      : ctx.loadgen.call<CreateResult>('burst', { target: m.target, receiverUrl: ctx.receiverUrl, n: count, connections: ctx.o.connections }, deliveryTimeoutMs(count));
  const waitFor = (count: number) =>
    ctx.receiver.call<{ count: number; reached: boolean }>('waitFor', { n: count, timeoutMs: deliveryTimeoutMs(count) }, deliveryTimeoutMs(count) + 10_000);
  let warm = 0;
  if (ctx.o.warmupSeconds > 0) {
    warm = Math.max(1, Math.floor(m.n / 10));
    await ctx.receiver.call('reset');
    const c = await create(warm);
    await waitFor(c.ok);
  }
  await ctx.receiver.call('reset');
  const wal0 = await walLsn(m.db);
  const server = await postgresCpuShare(m.db.name);
  const procs = cpuShare({ ...m.pids, loadgen: ctx.loadgen.pid, receiver: ctx.receiver.pid });
  const c = await create(m.n);
  if (c.failed) ctx.log(`postgres: ${who}: ${c.failed} creates failed: ${c.first_error}`);
  const w = await waitFor(c.ok);
  const cpu = procs();
  const pgCpu = await server();
  const wal1 = await walLsn(m.db);
  if (!w.reached) ctx.log(`postgres: ${who}: only ${w.count} of ${c.ok} delivered in time`);
  const s = await ctx.receiver.call<ReceiverStats>('stats');
  const delivery = deliveryFigures(c, s);
  const perS = delivery.per_s as number;
  ctx.log(
    `postgres: ${who} ${fmt(perS)} deliveries/s (${fmt(s.count)} jobs), creates ${fmt(delivery.create_per_s)}/s, ` +
      `p50 ${fmt(delivery.p50_ms, 1)} p99 ${fmt(delivery.p99_ms, 1)} ms; CPU % of a core: postgres ${pgCpu.backends}+${pgCpu.auxiliary}, ` +
      `${Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', ')}, machine ${pgCpu.machine}`,
  );
  const f: Figures = {
    ...delivery,
    jobs_total: warm + m.n,
    wal_bytes_per_job: s.count > 0 ? ((wal1.lsn as number) - (wal0.lsn as number)) / s.count : null,
    cpu_postgres: pgCpu.backends,
    cpu_postgres_aux: pgCpu.auxiliary,
    cpu_machine: pgCpu.machine,
  };
  for (const [k, v] of Object.entries(cpu)) f[`cpu_${k}`] = v;
  // CPU per job, µs (percent of a core over the span / jobs per second over the same span): what the
  // scale model is built from, and steadier than the rates on a machine shared with other work
  for (const k of Object.keys(f).filter((x) => x.startsWith('cpu_') && x !== 'cpu_machine')) {
    const v = f[k];
    f[`us_${k.slice(4)}`] = typeof v === 'number' && perS > 0 ? (v * 10_000) / perS : null;
  }
  return f;
}

function prefixed(f: Figures, prefix: string): Figures {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [`${prefix}_${k}`, v]));
}

/** A fresh database for fn, dropped after; the per-job statistics are read once fn's processes stopped. */
async function onFreshDatabase(ctx: Ctx, label: string, fn: (db: BenchDatabase) => Promise<Figures>): Promise<Figures> {
  const db = await createDatabase(`pgbench_${ctx.runId}_${label.replace(/-/g, '_')}`);
  try {
    const f = await fn(db);
    return { ...f, ...(await perJobStats(db, f.jobs_total as number)) };
  } finally {
    await db.drop();
  }
}

function pulseGateSide(name: 'pg1' | 'pg2', instances: number): Side {
  const who = `PulseGate, ${instances} instance${instances > 1 ? 's' : ''}`;
  return {
    name,
    who,
    run: (ctx, round) =>
      onFreshDatabase(ctx, `${name}-r${round}`, async (db) => {
        const running: RunningPulseGate[] = [];
        try {
          for (let k = 0; k < instances; k++) running.push(await ctx.startPulseGate(`${name}-r${round}-${k}`, undefined, { DATABASE_URL: db.url }));
          const urls = running.map((r) => r.url);
          const pids = Object.fromEntries(running.map((r, k) => [instances > 1 ? `service_${k + 1}` : 'service', r.pid]));
          return await createAndDeliver(ctx, who, { target: { kind: 'pulsegate', url: urls[0] as string, spread: urls }, n: ctx.o.jobs, db, pids });
        } finally {
          for (const [k, r] of running.entries()) await ctx.finishPulseGate(r, `${name}-r${round}-${k}`);
        }
      }),
  };
}

function pgBossSide(name: 'boss' | 'sendloop' | 'tuned', who: string, mode: PgBossStart['mode'], bulk: boolean, share: number): Side {
  return {
    name,
    who,
    run: (ctx, round) =>
      onFreshDatabase(ctx, `${name}-r${round}`, async (db) => {
        const peer = await pgBossPeer(ctx);
        const queue = 'bench';
        const start: PgBossStart = { connectionString: db.url, queue, mode, concurrency: ctx.o.concurrency, receiverUrl: ctx.receiverUrl };
        await peer.call('start', start, 120_000);
        try {
          const n = Math.max(1, Math.floor(ctx.o.jobs / share));
          return await createAndDeliver(ctx, who, { target: { kind: 'pgboss', connectionString: db.url, queue }, n, bulk, db, pids: { worker: peer.pid } });
        } finally {
          await peer.call('stop', {}, 120_000);
        }
      }),
  };
}

const SIDES: Side[] = [
  pulseGateSide('pg1', 1),
  pgBossSide('boss', 'pg-boss, send() + stock work()', 'work', false, STOCK_SHARE),
  pulseGateSide('pg2', 2),
  pgBossSide('tuned', `pg-boss, insert() of ${INSERT_BATCH} + tuned loop`, 'loop', true, 1),
  pgBossSide('sendloop', 'pg-boss, send() + tuned loop', 'loop', false, 1),
];

const perS = (f: Figures, side: SideName) => f[`${side}_per_s`] ?? null;
const div = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : null);

export const postgres: Scenario = {
  name: 'postgres',
  title: '7. On PostgreSQL',
  what:
    'end to end as 3., every side on a fresh database of one PostgreSQL server: PulseGate with 1 and 2 instances; pg-boss as its users run it ' +
    `(send() per job, one stock work() worker: batchSize = the concurrency, Promise.all, polling every 0.5 s, given 1/${STOCK_SHARE} of the jobs), ` +
    `with send() and a tuned fetch-many/complete-many loop, and with insert() of ${INSERT_BATCH} and that loop`,
  reference: 'pg-boss',
  async run(ctx, round) {
    // each round starts with a different side, so none always gets the warmer (or noisier) machine
    const order = SIDES.map((_, k) => SIDES[(k + round - 1) % SIDES.length] as Side);
    let f: Figures = {};
    for (const side of order) {
      ctx.log(`postgres: round ${round}: ${side.who}`);
      f = { ...f, ...prefixed(await side.run(ctx, round), side.name) };
    }
    for (const pgSide of ['pg1', 'pg2'] as const) {
      for (const ref of ['boss', 'sendloop', 'tuned'] as const) f[`ratio_${pgSide}_${ref}`] = div(perS(f, pgSide), perS(f, ref));
    }
    return f;
  },
  rows(m, rounds) {
    const rows: Row[] = [];
    const sum = (k: string) => rounds.reduce((a, r) => a + (r[k] ?? 0), 0);
    const line = (metric: string, pulsegate: string, reference: string, r = '', floor = '', verdict: Row['verdict'] = ''): void => {
      rows.push({ metric, pulsegate, reference, ratio: r, floor, verdict });
    };
    line('deliveries/s, 1 instance / pg-boss stock', fmt(m.pg1_per_s), fmt(m.boss_per_s), ratio(m.ratio_pg1_boss), '>= 2x', atLeast(m.ratio_pg1_boss, 2));
    line('deliveries/s, 2 instances / pg-boss stock', fmt(m.pg2_per_s), fmt(m.boss_per_s), ratio(m.ratio_pg2_boss), '>= 2x', atLeast(m.ratio_pg2_boss, 2));
    line('deliveries/s, 1 instance / pg-boss send() + tuned loop', fmt(m.pg1_per_s), fmt(m.sendloop_per_s), ratio(m.ratio_pg1_sendloop));
    line('deliveries/s, 2 instances / pg-boss send() + tuned loop', fmt(m.pg2_per_s), fmt(m.sendloop_per_s), ratio(m.ratio_pg2_sendloop));
    line(`deliveries/s, 1 instance / pg-boss insert() of ${INSERT_BATCH} + tuned loop`, fmt(m.pg1_per_s), fmt(m.tuned_per_s), ratio(m.ratio_pg1_tuned));
    line(`deliveries/s, 2 instances / pg-boss insert() of ${INSERT_BATCH} + tuned loop`, fmt(m.pg2_per_s), fmt(m.tuned_per_s), ratio(m.ratio_pg2_tuned));
    line('creates/s: 1 / 2 instances; pg-boss stock / send+loop / insert', `${fmt(m.pg1_create_per_s)} / ${fmt(m.pg2_create_per_s)}`, `${fmt(m.boss_create_per_s)} / ${fmt(m.sendloop_create_per_s)} / ${fmt(m.tuned_create_per_s)}`);
    line(
      'creation-to-delivery p50 / p99 (1 instance; pg-boss send+loop)',
      `${fmt(m.pg1_p50_ms, 1)} / ${fmt(m.pg1_p99_ms, 1)} ms`,
      `${fmt(m.sendloop_p50_ms, 1)} / ${fmt(m.sendloop_p99_ms, 1)} ms`,
    );
    line(
      'CPU % of a core, 1 instance: postgres backends + shared / service / loadgen / receiver; machine',
      `${fmt(m.pg1_cpu_postgres)} + ${fmt(m.pg1_cpu_postgres_aux)} / ${fmt(m.pg1_cpu_service)} / ${fmt(m.pg1_cpu_loadgen)} / ${fmt(m.pg1_cpu_receiver)}; ${fmt(m.pg1_cpu_machine)}`,
      '',
    );
    line(
      'CPU % of a core, 2 instances: postgres backends + shared / services / loadgen / receiver; machine',
      `${fmt(m.pg2_cpu_postgres)} + ${fmt(m.pg2_cpu_postgres_aux)} / ${fmt(m.pg2_cpu_service_1)} + ${fmt(m.pg2_cpu_service_2)} / ${fmt(m.pg2_cpu_loadgen)} / ${fmt(m.pg2_cpu_receiver)}; ${fmt(m.pg2_cpu_machine)}`,
      '',
    );
    line(
      'CPU % of a core, pg-boss send+loop: postgres backends + shared / worker / loadgen / receiver; machine',
      '',
      `${fmt(m.sendloop_cpu_postgres)} + ${fmt(m.sendloop_cpu_postgres_aux)} / ${fmt(m.sendloop_cpu_worker)} / ${fmt(m.sendloop_cpu_loadgen)} / ${fmt(m.sendloop_cpu_receiver)}; ${fmt(m.sendloop_cpu_machine)}`,
    );
    line(
      'CPU µs per job, 1 / 2 instances: postgres backends / service(s)',
      `${fmt(m.pg1_us_postgres)} / ${fmt(m.pg1_us_service)}; ${fmt(m.pg2_us_postgres)} / ${fmt(m.pg2_us_service_1)} + ${fmt(m.pg2_us_service_2)}`,
      '',
    );
    line(
      'CPU µs per job, pg-boss send+loop / insert: postgres backends / worker',
      '',
      `${fmt(m.sendloop_us_postgres)} / ${fmt(m.sendloop_us_worker)}; ${fmt(m.tuned_us_postgres)} / ${fmt(m.tuned_us_worker)}`,
    );
    line(
      'per job: commits / rows written / WAL bytes (1 instance; pg-boss send+loop)',
      `${fmt(m.pg1_commits_per_job, 2)} / ${fmt(m.pg1_rows_per_job, 2)} / ${fmt(m.pg1_wal_bytes_per_job)}`,
      `${fmt(m.sendloop_commits_per_job, 2)} / ${fmt(m.sendloop_rows_per_job, 2)} / ${fmt(m.sendloop_wal_bytes_per_job)}`,
    );
    const dup = sum('pg1_duplicates') + sum('pg2_duplicates');
    line('duplicate deliveries, all rounds (1 / 2 instances; pg-boss all)', `${fmt(sum('pg1_duplicates'))} / ${fmt(sum('pg2_duplicates'))}`, fmt(sum('boss_duplicates') + sum('sendloop_duplicates') + sum('tuned_duplicates')), '', '0', dup === 0 ? 'pass' : 'MISS');
    return rows;
  },
};
