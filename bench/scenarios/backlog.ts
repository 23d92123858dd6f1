// 5. Backlog memory: N jobs scheduled an hour ahead, created through the API by the load generator's
// clients. The service's RSS (VmRSS, sampled every 250 ms and at every tenth of the way) while they
// are stored, the time to store them, and bytes per job on disk. On BullMQ: the time to Queue.add
// them and Redis's used_memory growth.

import { atMost, fmt, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import { onBullMQ, onPulseGate, bothSides } from '../lib/phases.js';
import type { RunningPulseGate } from '../lib/pulsegate.js';
import type { CreateResult, Target } from '../loadgen.js';
import { request } from 'undici';

const HOUR_MS = 3_600_000;
/** RSS may grow this much from a tenth of the backlog to all of it and still count as flat. */
const FLAT_MB = 25;

function storeTimeoutMs(n: number): number {
  return 120_000 + n * 2;
}

async function fill(ctx: Ctx, target: Target, n: number, onProgress: (done: number) => void): Promise<CreateResult> {
  const off = ctx.loadgen.on('progress', (d) => onProgress((d as { done: number }).done));
  try {
    return await ctx.loadgen.call<CreateResult>(
      'burst',
      { target, receiverUrl: ctx.receiverUrl, n, connections: ctx.o.connections, delayMs: HOUR_MS, progressEvery: Math.max(1, Math.floor(n / 10)) },
      storeTimeoutMs(n),
    );
  } finally {
    off();
  }
}

/** Where the RSS goes, from the service's own /metrics (prom-client's default process metrics). */
async function heapOf(url: string): Promise<{ used: number; total: number; external: number } | null> {
  try {
    const res = await request(`${url}/metrics`);
    const text = await res.body.text();
    if (res.statusCode !== 200) return null;
    const mb = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
    return { used: mb('nodejs_heap_size_used_bytes'), total: mb('nodejs_heap_size_total_bytes'), external: mb('nodejs_external_memory_bytes') };
  } catch {
    return null;
  }
}

async function pulsegate(ctx: Ctx, target: Target, pg: RunningPulseGate): Promise<Figures> {
  const n = ctx.o.backlog;
  const emptyDb = pg.dbBytes();
  const startRss = pg.rssMb() ?? NaN;
  let peak = startRss;
  const sampler = setInterval(() => {
    const r = pg.rssMb();
    if (r !== null && r > peak) peak = r;
  }, 250);
  const atTenth: number[] = [];
  let c: CreateResult;
  try {
    c = await fill(ctx, target, n, (done) => {
      const r = pg.rssMb() ?? NaN;
      atTenth.push(r);
      if (r > peak) peak = r;
      ctx.log(`backlog: PulseGate ${fmt(done)} stored, RSS ${fmt(r, 0)} MB`);
    });
  } finally {
    clearInterval(sampler);
  }
  if (c.failed) ctx.log(`backlog: PulseGate: ${c.failed} creates failed: ${c.first_error}`);
  const endRss = pg.rssMb() ?? NaN;
  const heap = await heapOf(pg.url);
  const liveBytes = pg.dbBytes();
  await pg.stop();
  // closed: the WAL is checkpointed into the database file
  const closedBytes = pg.dbBytes();
  const seconds = (c.finished_at - c.started_at) / 1000;
  const f: Figures = {
    stored: c.ok,
    store_s: seconds,
    per_s: c.ok / seconds,
    rss_start_mb: startRss,
    rss_tenth_mb: atTenth[0] ?? null,
    rss_end_mb: endRss,
    rss_peak_mb: peak,
    rss_growth_mb: atTenth.length ? endRss - (atTenth[0] as number) : null,
    heap_used_mb: heap?.used ?? null,
    heap_total_mb: heap?.total ?? null,
    external_mb: heap?.external ?? null,
    disk_live_mb: liveBytes / 2 ** 20,
    bytes_per_job: (closedBytes - emptyDb) / c.ok,
  };
  ctx.log(
    `backlog: PulseGate stored ${fmt(c.ok)} in ${fmt(seconds, 1)} s; RSS peak ${fmt(peak)} MB, at the end ${fmt(endRss)} MB ` +
      `(JS heap ${fmt(f.heap_used_mb)} used of ${fmt(f.heap_total_mb)} MB, external ${fmt(f.external_mb)} MB); ${fmt(f.bytes_per_job)} bytes/job on disk`,
  );
  return f;
}

async function bullmq(ctx: Ctx, target: Target): Promise<Figures> {
  const peer = ctx.peer;
  if (!peer) return {};
  const n = ctx.o.backlog;
  const t = target as Extract<Target, { kind: 'bullmq' }>;
  const mem = () => peer.call<{ used_memory: number; used_memory_rss: number }>('redisMemory', { host: t.host, port: t.port, prefix: t.prefix, queue: t.queue });
  const before = await mem();
  const c = await fill(ctx, target, n, (done) => ctx.log(`backlog: BullMQ ${fmt(done)} added`));
  if (c.failed) ctx.log(`backlog: BullMQ: ${c.failed} adds failed: ${c.first_error}`);
  const after = await mem();
  const seconds = (c.finished_at - c.started_at) / 1000;
  const grown = after.used_memory - before.used_memory;
  ctx.log(`backlog: BullMQ added ${fmt(c.ok)} in ${fmt(seconds, 1)} s; Redis used_memory +${fmt(grown / 2 ** 20)} MB`);
  return { stored: c.ok, store_s: seconds, per_s: c.ok / seconds, redis_mb: grown / 2 ** 20, bytes_per_job: grown / c.ok };
}

export const backlog: Scenario = {
  name: 'backlog',
  title: '5. Backlog',
  what: 'jobs scheduled 1 h ahead, created through the API; PulseGate RSS and disk, BullMQ Redis used_memory',
  reference: 'BullMQ',
  async run(ctx, round) {
    const pg = () => onPulseGate(ctx, `backlog-r${round}`, (t, p) => pulsegate(ctx, t, p));
    const bull = () => onBullMQ(ctx, `backlog-r${round}`, (t) => bullmq(ctx, t));
    const f = await bothSides(round, pg, bull);
    return f;
  },
  rows(m) {
    return [
      { metric: 'jobs stored', pulsegate: fmt(m.pg_stored), reference: fmt(m.bull_stored), ratio: '', floor: '', verdict: '' },
      { metric: 'time to store', pulsegate: fmt(m.pg_store_s, 1, 's'), reference: fmt(m.bull_store_s, 1, 's'), ratio: '', floor: '', verdict: '' },
      { metric: 'jobs/s stored', pulsegate: fmt(m.pg_per_s), reference: fmt(m.bull_per_s), ratio: '', floor: '', verdict: '' },
      { metric: 'memory: PulseGate RSS peak / Redis used_memory growth', pulsegate: fmt(m.pg_rss_peak_mb, 0, 'MB'), reference: fmt(m.bull_redis_mb, 0, 'MB'), ratio: '', floor: '<= 150 MB', verdict: atMost(m.pg_rss_peak_mb, 150) },
      {
        metric: 'RSS at 1/10 of the backlog → at all of it',
        pulsegate: `${fmt(m.pg_rss_tenth_mb, 0)} → ${fmt(m.pg_rss_end_mb, 0)} MB`,
        reference: '',
        ratio: '',
        floor: `flat (<= +${FLAT_MB} MB)`,
        verdict: atMost(m.pg_rss_growth_mb, FLAT_MB),
      },
      {
        metric: 'PulseGate at the end: JS heap used / heap total / external',
        pulsegate: `${fmt(m.pg_heap_used_mb, 0)} / ${fmt(m.pg_heap_total_mb, 0)} / ${fmt(m.pg_external_mb, 0)} MB`,
        reference: '',
        ratio: '',
        floor: '',
        verdict: '',
      },
      { metric: 'bytes per job (PulseGate: on disk; BullMQ: in Redis memory)', pulsegate: fmt(m.pg_bytes_per_job), reference: fmt(m.bull_bytes_per_job), ratio: '', floor: '', verdict: '' },
    ];
  },
};
