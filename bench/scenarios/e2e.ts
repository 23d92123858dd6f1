// 3. End to end: N jobs created as fast as the load generator's clients can, while they are being
// delivered. Deliveries per second from the first create request to the last delivery, and
// creation-to-delivery latency, after an unmeasured warm-up of a tenth as many jobs. The same on
// BullMQ (Queue.add, a worker delivering with undici).

import { atLeast, deliveryFigures, deliveryTimeoutMs, fmt, ratio, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import type { CreateResult, Target } from '../loadgen.js';
import type { ReceiverStats } from '../receiver.js';
import { onBullMQ, onPulseGate, bothSides } from '../lib/phases.js';
import { cpuShare, threadSplit } from '../lib/sys.js';

/**
 * Creates n jobs on target and waits for the receiver to get them all. With `pid` (PulseGate's
 * side), the CPU of its threads and of the load generator and the receiver over the measured span.
 */
async function createAndDeliver(ctx: Ctx, target: Target, who: string, pid?: number): Promise<Figures> {
  const n = ctx.o.jobs;
  if (ctx.o.warmupSeconds > 0) {
    // unmeasured: a tenth of the jobs first, so neither side is timed on code not yet optimized
    const warm = Math.max(1, Math.floor(n / 10));
    await ctx.receiver.call('reset');
    const c = await ctx.loadgen.call<CreateResult>('burst', { target, receiverUrl: ctx.receiverUrl, n: warm, connections: ctx.o.connections }, deliveryTimeoutMs(warm));
    await ctx.receiver.call('waitFor', { n: c.ok, timeoutMs: deliveryTimeoutMs(warm) }, deliveryTimeoutMs(warm) + 10_000);
  }
  await ctx.receiver.call('reset');
  const threads = pid === undefined ? null : threadSplit(pid);
  const helpers = cpuShare({ generator: ctx.loadgen.pid, receiver: ctx.receiver.pid });
  const c = await ctx.loadgen.call<CreateResult>('burst', { target, receiverUrl: ctx.receiverUrl, n, connections: ctx.o.connections }, deliveryTimeoutMs(n));
  if (c.failed) ctx.log(`e2e: ${who}: ${c.failed} creates failed: ${c.first_error}`);
  const w = await ctx.receiver.call<{ count: number; reached: boolean }>('waitFor', { n: c.ok, timeoutMs: deliveryTimeoutMs(n) }, deliveryTimeoutMs(n) + 10_000);
  if (!w.reached) ctx.log(`e2e: ${who}: only ${w.count} of ${c.ok} delivered in time`);
  const split = threads?.() ?? null;
  const other = helpers();
  const s = await ctx.receiver.call<ReceiverStats>('stats');
  const f = deliveryFigures(c, s);
  ctx.log(
    `e2e: ${who} ${fmt(f.per_s)} deliveries/s, creation-to-delivery p50 ${fmt(f.p50_ms, 1)} p99 ${fmt(f.p99_ms, 1)} ms; ` +
      `CPU, % of one core: ${split ? `main thread ${split.main}, busiest other ${split.busiest}, the rest ${split.rest}, ` : ''}` +
      `load generator ${fmt(other.generator)}, receiver ${fmt(other.receiver)}`,
  );
  return {
    ...f,
    cpu_main: split?.main ?? null,
    cpu_busiest: split?.busiest ?? null,
    cpu_rest: split?.rest ?? null,
    cpu_generator: other.generator,
    cpu_receiver: other.receiver,
  };
}

export const e2e: Scenario = {
  name: 'e2e',
  title: '3. End to end',
  what: 'jobs created as fast as the clients can while they are delivered; BullMQ: Queue.add and a worker',
  reference: 'BullMQ',
  async run(ctx, round) {
    const pg = () => onPulseGate(ctx, `e2e-r${round}`, (t, running) => createAndDeliver(ctx, t, 'PulseGate', running.pid));
    const bull = () => onBullMQ(ctx, `e2e-r${round}`, (t) => createAndDeliver(ctx, t, 'BullMQ'));
    const f = await bothSides(round, pg, bull);
    f.ratio = f.bull_per_s ? (f.pg_per_s as number) / f.bull_per_s : null;
    return f;
  },
  rows(m) {
    return [
      { metric: 'deliveries/s, first request to last delivery', pulsegate: fmt(m.pg_per_s), reference: fmt(m.bull_per_s), ratio: ratio(m.ratio), floor: '>= 1.0x', verdict: atLeast(m.ratio, 1) },
      { metric: 'creates/s', pulsegate: fmt(m.pg_create_per_s), reference: fmt(m.bull_create_per_s), ratio: '', floor: '', verdict: '' },
      {
        metric: 'creation-to-delivery p50 / p99',
        pulsegate: `${fmt(m.pg_p50_ms, 1)} / ${fmt(m.pg_p99_ms, 1)} ms`,
        reference: `${fmt(m.bull_p50_ms, 1)} / ${fmt(m.bull_p99_ms, 1)} ms`,
        ratio: '',
        floor: '',
        verdict: '',
      },
      {
        metric: 'CPU, % of one core: main thread / busiest other thread (the engine) / the rest; load generator, receiver',
        pulsegate: `${fmt(m.pg_cpu_main)} / ${fmt(m.pg_cpu_busiest)} / ${fmt(m.pg_cpu_rest)}; ${fmt(m.pg_cpu_generator)}, ${fmt(m.pg_cpu_receiver)}`,
        reference: `BullMQ's side: ${fmt(m.bull_cpu_generator)}, ${fmt(m.bull_cpu_receiver)}`,
        ratio: '',
        floor: '',
        verdict: '',
      },
    ];
  },
};
