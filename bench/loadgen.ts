// The load generator, a process of its own. Driven by bench/run.ts over IPC:
//   autocannon  fixed-duration POST load (intake; unique bodies through autocannon's [<id>])
//   burst       n jobs as fast as `connections` concurrent clients can create them
//   paced       `rate` jobs per second for `seconds`, every other one scheduled with a delay
//   raw         n plain undici.request POSTs to the receiver with `concurrency` in flight (the ceiling)
//   bulk        n jobs in batches of `batch` (POST /v1/jobs/batch, or Queue.addBulk), `connections` batches in flight
// A job is created over HTTP on PulseGate (POST /v1/jobs; with `spread`, client k posts to instance
// k mod N), with Queue.add on BullMQ, or with send() (one job) / insert() (a batch) on pg-boss. Each payload
// carries t (creation time, epoch ms), i (index) and d (due time) for the receiver to measure against.

import autocannon from 'autocannon';
import { Pool, request } from 'undici';
import { pacedDelay } from './lib/delays.js';
import { emit, serve } from './lib/rpc.js';
import { dist, nowMs, Samples, type Dist } from './lib/stats.js';

export type Target =
  /** spread: every instance's URL; the clients are dealt out among them in turn. */
  | { kind: 'pulsegate'; url: string; spread?: string[] }
  | { kind: 'pgboss'; connectionString: string; queue: string }
  /** Straight to the receiver, no dispatcher between: one HTTP hop, the machine's own latency. */
  | { kind: 'receiver' }
  | { kind: 'bullmq'; queue: string; prefix: string; host: string; port: number };

export interface CreateResult {
  ok: number;
  failed: number;
  first_error: string | null;
  started_at: number;
  finished_at: number;
  /** Time for one create call (HTTP request or Queue.add). */
  request_ms: Dist;
}

export interface PacedResult extends CreateResult {
  /** How far behind its intended send time each job was sent (the generator's own lag). */
  send_lag_ms: Dist;
}

/** The job as the receiver will get it. */
function payload(i: number, t: number, delayMs: number | undefined): Record<string, unknown> {
  const p: Record<string, unknown> = {
    t,
    i,
    order: { id: `ord_${i}`, amount_cents: 1299, currency: 'EUR', status: 'paid', customer: 'cus_4f9a2c' },
  };
  if (delayMs !== undefined) p.d = t + delayMs;
  return p;
}

interface Creator {
  /** client: which of the concurrent clients calls (a spread target picks its instance by it). */
  create(i: number, delayMs: number | undefined, client?: number): Promise<void>;
  /** Jobs first..first+count-1 in one call (POST /v1/jobs/batch, or Queue.addBulk). */
  createMany(first: number, count: number, delayMs: number | undefined): Promise<void>;
  close(): Promise<void>;
}

const BULLMQ_JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: 1000,
};

async function creator(target: Target, receiverUrl: string, connections: number): Promise<Creator> {
  if (target.kind === 'pulsegate') {
    const urls = target.spread?.length ? target.spread : [target.url];
    const pools = urls.map((url) => new Pool(url, { connections: Math.ceil(connections / urls.length), pipelining: 1, keepAliveTimeout: 60_000 }));
    const pool = pools[0] as Pool;
    const destination = { url: receiverUrl };
    return {
      async create(i, delayMs, client = 0) {
        const body: Record<string, unknown> = { tenant_id: 'bench', type: 'order.paid', payload: payload(i, nowMs(), delayMs), destination };
        if (delayMs !== undefined) body.delay_ms = delayMs;
        const res = await (pools[client % pools.length] as Pool).request({ path: '/v1/jobs', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (res.statusCode !== 201) throw new Error(`HTTP ${res.statusCode}: ${(await res.body.text()).slice(0, 300)}`);
        await res.body.dump();
      },
      async createMany(first, count, delayMs) {
        const jobs = Array.from({ length: count }, (_, k) => {
          const body: Record<string, unknown> = { tenant_id: 'bench', type: 'order.paid', payload: payload(first + k, nowMs(), delayMs), destination };
          if (delayMs !== undefined) body.delay_ms = delayMs;
          return body;
        });
        const res = await pool.request({ path: '/v1/jobs/batch', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
        const created = (JSON.parse(text) as { data: { status: number }[] }).data.filter((d) => d.status === 201).length;
        if (created !== count) throw new Error(`batch: ${created} of ${count} created`);
      },
      close: async () => {
        await Promise.all(pools.map((p) => p.close()));
      },
    };
  }
  if (target.kind === 'pgboss') return pgBossCreator(target);
  if (target.kind === 'receiver') {
    const pool = new Pool(new URL(receiverUrl).origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
    const path = new URL(receiverUrl).pathname;
    return {
      // no due time: the receiver counts the arrival against the creation time (one hop's latency)
      async create(i) {
        const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload(i, nowMs(), undefined)) });
        await res.body.dump();
        if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
      },
      createMany() {
        throw new Error('the receiver takes no batches');
      },
      close: () => pool.close(),
    };
  }
  const { Queue } = await import('bullmq');
  const queue = new Queue(target.queue, { connection: { host: target.host, port: target.port }, prefix: target.prefix });
  await queue.waitUntilReady();
  return {
    async create(i, delayMs) {
      const data = payload(i, nowMs(), delayMs);
      await queue.add('order.paid', data, delayMs !== undefined ? { ...BULLMQ_JOB_OPTIONS, delay: delayMs } : BULLMQ_JOB_OPTIONS);
    },
    async createMany(first, count, delayMs) {
      const opts = delayMs !== undefined ? { ...BULLMQ_JOB_OPTIONS, delay: delayMs } : BULLMQ_JOB_OPTIONS;
      await queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: 'order.paid', data: payload(first + k, nowMs(), delayMs), opts })));
    },
    close: () => queue.close(),
  };
}

/**
 * pg-boss as its users call it: send() for one job (the retry settings BullMQ gets), insert() for a
 * batch. The schema exists already (the peer's PgBoss.start() made it): this client neither migrates
 * nor runs maintenance.
 */
async function pgBossCreator(target: Extract<Target, { kind: 'pgboss' }>): Promise<Creator> {
  const { default: PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: target.connectionString, migrate: false, supervise: false, schedule: false });
  boss.on('error', (err: Error) => console.error(`[loadgen] pg-boss: ${err.message}`));
  await boss.start();
  const options = { retryLimit: PGBOSS_RETRY.retryLimit, retryDelay: PGBOSS_RETRY.retryDelay, retryBackoff: true };
  return {
    async create(i, delayMs) {
      const data = payload(i, nowMs(), delayMs);
      const id = await boss.send(target.queue, data, delayMs !== undefined ? { ...options, startAfter: Math.ceil(delayMs / 1000) } : options);
      if (id === null) throw new Error('send() created no job');
    },
    async createMany(first, count, delayMs) {
      const startAfter = delayMs !== undefined ? new Date(Date.now() + delayMs) : undefined;
      await boss.insert(Array.from({ length: count }, (_, k) => ({ name: target.queue, data: payload(first + k, nowMs(), delayMs), ...options, startAfter })));
    },
    close: () => boss.stop({ graceful: false, wait: true, close: true }),
  };
}

/** pg-boss's retry settings, as BullMQ's: 5 attempts (4 retries), exponential from 1 s. */
const PGBOSS_RETRY = { retryLimit: 4, retryDelay: 1 };

class Tally {
  ok = 0;
  failed = 0;
  firstError: string | null = null;
  readonly requestMs = new Samples(1 << 15);

  async run(fn: () => Promise<void>): Promise<void> {
    const t0 = performance.now();
    try {
      await fn();
      this.ok++;
      this.requestMs.push(performance.now() - t0);
    } catch (err) {
      this.failed++;
      this.firstError ??= (err as Error).message;
    }
  }
}

interface BurstArgs {
  target: Target;
  receiverUrl: string;
  n: number;
  connections: number;
  delayMs?: number;
  /** Emit a `progress` event every this many jobs created. */
  progressEvery?: number;
}

async function burst(a: BurstArgs): Promise<CreateResult> {
  const c = await creator(a.target, a.receiverUrl, a.connections);
  const tally = new Tally();
  let next = 0;
  let done = 0;
  const startedAt = nowMs();
  const client = async (_: unknown, k: number) => {
    while (next < a.n) {
      const i = next++;
      await tally.run(() => c.create(i, a.delayMs, k));
      done++;
      if (a.progressEvery && done % a.progressEvery === 0) emit('progress', { done, at: nowMs() });
      // a target that fails everything would otherwise spin through n errors; stop early instead
      if (tally.failed > 100 && tally.failed > tally.ok) next = a.n;
    }
  };
  await Promise.all(Array.from({ length: a.connections }, client));
  const finishedAt = nowMs();
  await c.close();
  return { ok: tally.ok, failed: tally.failed, first_error: tally.firstError, started_at: startedAt, finished_at: finishedAt, request_ms: dist(tally.requestMs) };
}

interface PacedArgs {
  target: Target;
  receiverUrl: string;
  rate: number;
  seconds: number;
  connections: number;
  delayMinMs: number;
  delayMaxMs: number;
}

async function paced(a: PacedArgs): Promise<PacedResult> {
  const c = await creator(a.target, a.receiverUrl, a.connections);
  const tally = new Tally();
  const lag = new Samples(1 << 14);
  const n = Math.round(a.rate * a.seconds);
  const interval = 1000 / a.rate;
  const inflight = new Set<Promise<void>>();
  const startedAt = nowMs() + 20;
  let i = 0;
  // bounded: every pass either sends at least one job or sleeps until the next one is due
  while (i < n) {
    const now = nowMs();
    while (i < n && startedAt + i * interval <= now) {
      lag.push(now - (startedAt + i * interval));
      const p = tally.run(() => c.create(i, pacedDelay(i, a.delayMinMs, a.delayMaxMs))).finally(() => inflight.delete(p));
      inflight.add(p);
      i++;
    }
    if (i < n) await new Promise((r) => setTimeout(r, Math.max(0, startedAt + i * interval - nowMs())));
  }
  await Promise.all(inflight);
  const finishedAt = nowMs();
  await c.close();
  return {
    ok: tally.ok,
    failed: tally.failed,
    first_error: tally.firstError,
    started_at: startedAt,
    finished_at: finishedAt,
    request_ms: dist(tally.requestMs),
    send_lag_ms: dist(lag),
  };
}

interface RawArgs {
  url: string;
  n: number;
  concurrency: number;
}

/** The delivery ceiling: what one process with plain undici.request gets through to the receiver. */
async function raw(a: RawArgs): Promise<CreateResult> {
  const tally = new Tally();
  let next = 0;
  const startedAt = nowMs();
  const client = async () => {
    while (next < a.n) {
      const i = next++;
      await tally.run(async () => {
        const res = await request(a.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload(i, nowMs(), undefined)) });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      });
      if (tally.failed > 100 && tally.failed > tally.ok) next = a.n;
    }
  };
  await Promise.all(Array.from({ length: a.concurrency }, client));
  return { ok: tally.ok, failed: tally.failed, first_error: tally.firstError, started_at: startedAt, finished_at: nowMs(), request_ms: dist(tally.requestMs) };
}

interface AutocannonArgs {
  url: string;
  body: string;
  connections: number;
  seconds: number;
}

export interface AutocannonResult {
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  per_s: number;
  p50_ms: number;
  p99_ms: number;
}

async function cannon(a: AutocannonArgs): Promise<AutocannonResult> {
  const r = await autocannon({
    url: a.url,
    method: 'POST',
    connections: a.connections,
    duration: a.seconds,
    headers: { 'content-type': 'application/json' },
    body: a.body,
    idReplacement: true,
    timeout: 30,
  });
  return {
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    seconds: r.duration,
    per_s: r['2xx'] / r.duration,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
  };
}

interface BulkArgs {
  target: Target;
  receiverUrl: string;
  n: number;
  batch: number;
  connections: number;
  delayMs?: number;
}

/** n jobs in calls of `batch` jobs, `connections` calls in flight; ok and failed count jobs, request_ms calls. */
async function bulk(a: BulkArgs): Promise<CreateResult> {
  const c = await creator(a.target, a.receiverUrl, a.connections);
  const tally = new Tally();
  let next = 0;
  let okJobs = 0;
  const started = nowMs();
  const client = async () => {
    while (next < a.n) {
      const first = next;
      const count = Math.min(a.batch, a.n - first);
      next += count;
      const failedBefore = tally.failed;
      await tally.run(() => c.createMany(first, count, a.delayMs));
      if (tally.failed === failedBefore) okJobs += count;
    }
  };
  await Promise.all(Array.from({ length: a.connections }, client));
  const finished = nowMs();
  await c.close();
  return { ok: okJobs, failed: a.n - okJobs, first_error: tally.firstError, started_at: started, finished_at: finished, request_ms: dist(tally.requestMs) };
}

serve({
  autocannon: cannon,
  bulk,
  burst,
  paced,
  raw,
});
