// 2. Delivery: N jobs already stored (written through the Store driver before the service starts),
// then PulseGate started: deliveries per second at the receiver, first to last. Then, in the same
// process now warm, N more written while it runs. Next to it the ceiling: plain undici.request from
// one process to the same receiver with the same concurrency (after a warm-up of its own).

import { bothSides } from '../lib/phases.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { atLeast, deliveryTimeoutMs, fmt, ratio, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import { seedDueJobs } from '../lib/seed.js';
import type { ReceiverStats } from '../receiver.js';
import type { CreateResult } from '../loadgen.js';
import { cpuShare } from '../lib/sys.js';

async function deliveredRate(ctx: Ctx, n: number, what: string): Promise<ReceiverStats> {
  const w = await ctx.receiver.call<{ count: number; reached: boolean }>('waitFor', { n, timeoutMs: deliveryTimeoutMs(n) }, deliveryTimeoutMs(n) + 10_000);
  if (!w.reached) ctx.log(`delivery: ${what}: only ${w.count} of ${n} delivered in time`);
  const s = await ctx.receiver.call<ReceiverStats>('stats');
  ctx.log(`delivery: ${what} ${fmt(s.rate)} deliveries/s (${s.count} delivered, ${s.duplicates} duplicates)`);
  return s;
}

async function pulsegate(ctx: Ctx, round: number): Promise<Figures> {
  const label = `delivery-r${round}`;
  const n = ctx.o.jobs;
  const dir = join(ctx.tmpFor(label));
  mkdirSync(dir, { recursive: true });
  const dbPath = join(dir, 'pulsegate.db');
  await seedDueJobs(dbPath, n, ctx.receiverUrl);
  await ctx.receiver.call('reset');
  const pg = await ctx.startPulseGate(label, dir);
  try {
    // as the issue asks: a fresh process whose engine starts on N stored jobs
    const coldShare = cpuShare({ server: pg.pid, receiver: ctx.receiver.pid });
    const cold = await deliveredRate(ctx, n, 'PulseGate, engine started on stored jobs');
    const coldCpu = coldShare();
    // the CPU figures are the warm run's when there is one, like pg_per_s
    const f: Figures = { pg_cold_per_s: cold.rate, pg_per_s: cold.rate, pg_duplicates: cold.duplicates, pg_cpu: coldCpu.server, pg_receiver_cpu: coldCpu.receiver };
    if (ctx.o.warmupSeconds > 0) {
      // the same process, now warm: N more jobs written by another process in one transaction,
      // found by the engine's periodic poll (within SCHEDULER_POLL_INTERVAL_MS)
      await ctx.receiver.call('reset');
      await seedDueJobs(dbPath, n, ctx.receiverUrl);
      const share = cpuShare({ server: pg.pid, receiver: ctx.receiver.pid });
      const warm = await deliveredRate(ctx, n, 'PulseGate, warm');
      const cpu = share();
      f.pg_cpu = cpu.server;
      f.pg_receiver_cpu = cpu.receiver;
      f.pg_per_s = warm.rate;
      f.pg_duplicates = (f.pg_duplicates as number) + warm.duplicates;
    }
    return f;
  } finally {
    await ctx.finishPulseGate(pg, label);
  }
}

async function raw(ctx: Ctx): Promise<Figures> {
  const n = ctx.o.jobs;
  const send = (count: number) =>
    ctx.loadgen.call<CreateResult>('raw', { url: ctx.receiverUrl, n: count, concurrency: ctx.o.concurrency }, deliveryTimeoutMs(count));
  if (ctx.o.warmupSeconds > 0) await send(Math.max(1, Math.floor(n / 10)));
  await ctx.receiver.call('reset');
  const share = cpuShare({ client: ctx.loadgen.pid, receiver: ctx.receiver.pid });
  const r = await send(n);
  const cpu = share();
  const s = await ctx.receiver.call<ReceiverStats>('stats');
  if (r.failed) ctx.log(`delivery: raw undici had ${r.failed} failures: ${r.first_error}`);
  ctx.log(`delivery: raw undici.request ${fmt(s.rate)} requests/s`);
  return { undici_per_s: s.rate, undici_cpu: cpu.client, undici_receiver_cpu: cpu.receiver };
}

export const delivery: Scenario = {
  name: 'delivery',
  title: '2. Delivery',
  what: 'jobs stored before the service starts, delivered to the receiver; next to raw undici.request with the same concurrency',
  reference: 'raw undici.request',
  async run(ctx, round) {
    const f = await bothSides(round, () => pulsegate(ctx, round), () => raw(ctx));
    f.ratio = (f.pg_per_s as number) / (f.undici_per_s as number);
    f.cold_ratio = (f.pg_cold_per_s as number) / (f.undici_per_s as number);
    return f;
  },
  rows(m) {
    const rows = [{ metric: 'deliveries/s, warm process', pulsegate: fmt(m.pg_per_s), reference: fmt(m.undici_per_s), ratio: ratio(m.ratio), floor: '>= 0.8x', verdict: atLeast(m.ratio, 0.8) }];
    if (m.cold_ratio !== m.ratio) {
      rows.push({ metric: 'deliveries/s, engine just started', pulsegate: fmt(m.pg_cold_per_s), reference: fmt(m.undici_per_s), ratio: ratio(m.cold_ratio), floor: '>= 0.8x', verdict: atLeast(m.cold_ratio, 0.8) });
    }
    rows.push({
      metric: 'CPU, % of one core: sender (service / undici client) / receiver',
      pulsegate: `${fmt(m.pg_cpu)} / ${fmt(m.pg_receiver_cpu)}`,
      reference: `${fmt(m.undici_cpu)} / ${fmt(m.undici_receiver_cpu)}`,
      ratio: '',
      floor: '',
      verdict: '',
    });
    return rows;
  },
};
