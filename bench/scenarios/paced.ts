// 4. Paced latency: R jobs per second for S seconds (every other job scheduled 100-1000 ms ahead with
// delay_ms), creation-to-delivery latency of the immediate jobs and scheduling lateness (delivery
// time minus due time) of the scheduled ones, both measured at the receiver, after a warm-up at the
// same rate. The same on BullMQ, and, as the machine's own floor, the generator posting straight to
// the receiver at that rate (one HTTP hop, nothing stored).

import { atMost, deliveryTimeoutMs, fmt, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import type { PacedResult, Target } from '../loadgen.js';
import type { ReceiverStats } from '../receiver.js';
import { onBullMQ, onPulseGate, bothSides } from '../lib/phases.js';
import { cpuMs, threadSplit } from '../lib/sys.js';

/**
 * V8 optimizes a function once it has run some thousands of times, so at a low rate a process takes
 * many seconds to warm up (at 250/s after a 2 s warm-up, a profile showed TurboFan compiling 16.5%
 * of the time). The warm-up is therefore at least this many jobs, and at least --warmup seconds.
 */
const PACED_WARMUP_JOBS = 5000;

export function pacedWarmupSeconds(warmupSeconds: number, rate: number): number {
  return warmupSeconds > 0 ? Math.max(warmupSeconds, Math.ceil(PACED_WARMUP_JOBS / rate)) : 0;
}

/** Sends at the paced rate for `seconds` and waits until the receiver has every job. */
async function sendPaced(ctx: Ctx, target: Target, who: string, seconds: number): Promise<PacedResult> {
  await ctx.receiver.call('reset');
  const p = await ctx.loadgen.call<PacedResult>(
    'paced',
    { target, receiverUrl: ctx.receiverUrl, rate: ctx.o.pacedRate, seconds, connections: ctx.o.connections, delayMinMs: 100, delayMaxMs: 1000 },
    (seconds + 120) * 1000,
  );
  if (p.failed) ctx.log(`paced: ${who}: ${p.failed} creates failed: ${p.first_error}`);
  const w = await ctx.receiver.call<{ count: number; reached: boolean }>('waitFor', { n: p.ok, timeoutMs: deliveryTimeoutMs(p.ok) }, deliveryTimeoutMs(p.ok) + 10_000);
  if (!w.reached) ctx.log(`paced: ${who}: only ${w.count} of ${p.ok} delivered in time`);
  return p;
}

async function pace(ctx: Ctx, target: Target, who: string, pid?: number): Promise<Figures> {
  // a latency figure is about the steady state: a fresh process's first seconds (code not yet
  // optimized) would otherwise be the p99, so the same rate runs first, unmeasured
  const warmup = pacedWarmupSeconds(ctx.o.warmupSeconds, ctx.o.pacedRate);
  if (warmup > 0) await sendPaced(ctx, target, who, warmup);
  const cpuBefore = pid === undefined ? null : cpuMs(pid);
  const threads = pid === undefined ? null : threadSplit(pid);
  const p = await sendPaced(ctx, target, who, ctx.o.pacedSeconds);
  const cpuAfter = pid === undefined ? null : cpuMs(pid);
  const split = threads?.() ?? null;
  const s = await ctx.receiver.call<ReceiverStats>('stats');
  // the service's own CPU time (all threads) per job over the measured span, from /proc
  const cpuPerJob = cpuBefore !== null && cpuAfter !== null && p.ok > 0 ? (cpuAfter - cpuBefore) / p.ok : null;
  ctx.log(
    `paced: ${who} creation-to-delivery p50 ${fmt(s.latency_ms.p50, 1)} p99 ${fmt(s.latency_ms.p99, 1)} ms; ` +
      `lateness p50 ${fmt(s.lateness_ms.p50, 1)} p99 ${fmt(s.lateness_ms.p99, 1)} ms; generator lag p99 ${fmt(p.send_lag_ms.p99, 1)} ms` +
      (cpuPerJob === null ? '' : `; service CPU ${fmt(cpuPerJob, 2)} ms per job`) +
      (split ? ` (% of one core: main thread ${split.main}, busiest other ${split.busiest}, the rest ${split.rest})` : ''),
  );
  return {
    // only where it was measured (PulseGate's side): BullMQ's work is split with Redis
    ...(cpuPerJob === null ? {} : { cpu_ms_per_job: cpuPerJob }),
    ...(split ? { cpu_main: split.main, cpu_busiest: split.busiest, cpu_rest: split.rest } : {}),
    p50_ms: s.latency_ms.p50,
    p99_ms: s.latency_ms.p99,
    late_p50_ms: s.lateness_ms.p50,
    late_p99_ms: s.lateness_ms.p99,
    sent_per_s: p.ok / ((p.finished_at - p.started_at) / 1000),
    send_lag_p99_ms: p.send_lag_ms.p99,
    delivered: s.count,
  };
}

export const paced: Scenario = {
  name: 'paced',
  title: '4. Paced',
  what: 'a fixed rate of creates, every other job with delay_ms 100-1000; latency and lateness measured at the receiver',
  reference: 'BullMQ',
  async run(ctx, round) {
    const pg = () => onPulseGate(ctx, `paced-r${round}`, (t, pg) => pace(ctx, t, 'PulseGate', pg.pid));
    const bull = () => onBullMQ(ctx, `paced-r${round}`, (t) => pace(ctx, t, 'BullMQ'));
    const f = await bothSides(round, pg, bull);
    // the machine's own floor at this rate: the generator posting straight to the receiver
    const hop = await pace(ctx, { kind: 'receiver' }, 'one hop (generator to receiver)');
    return { ...f, hop_p50_ms: hop.p50_ms ?? null, hop_p99_ms: hop.p99_ms ?? null };
  },
  rows(m) {
    return [
      { metric: 'creation-to-delivery p50', pulsegate: fmt(m.pg_p50_ms, 1, 'ms'), reference: fmt(m.bull_p50_ms, 1, 'ms'), ratio: '', floor: '', verdict: '' },
      // issue 13: at most BullMQ's in the same rounds, and at most 5 ms when the machine is quiet
      { metric: 'creation-to-delivery p99', pulsegate: fmt(m.pg_p99_ms, 1, 'ms'), reference: fmt(m.bull_p99_ms, 1, 'ms'), ratio: '', floor: '<= BullMQ', verdict: m.bull_p99_ms == null ? '' : atMost(m.pg_p99_ms, m.bull_p99_ms) },
      { metric: 'creation-to-delivery p99 (floor for a quiet machine)', pulsegate: fmt(m.pg_p99_ms, 1, 'ms'), reference: '', ratio: '', floor: '<= 5 ms', verdict: atMost(m.pg_p99_ms, 5) },
      { metric: 'one HTTP hop at this rate, generator to receiver, p50 / p99 (machine floor)', pulsegate: '', reference: `${fmt(m.hop_p50_ms, 1)} / ${fmt(m.hop_p99_ms, 1)} ms`, ratio: '', floor: '', verdict: '' },
      { metric: 'scheduling lateness p50', pulsegate: fmt(m.pg_late_p50_ms, 1, 'ms'), reference: fmt(m.bull_late_p50_ms, 1, 'ms'), ratio: '', floor: '', verdict: '' },
      { metric: 'scheduling lateness p99', pulsegate: fmt(m.pg_late_p99_ms, 1, 'ms'), reference: fmt(m.bull_late_p99_ms, 1, 'ms'), ratio: '', floor: '<= 5 ms', verdict: atMost(m.pg_late_p99_ms, 5) },
      { metric: 'service CPU per job (all threads)', pulsegate: fmt(m.pg_cpu_ms_per_job, 2, 'ms'), reference: '', ratio: '', floor: '', verdict: '' },
      {
        metric: 'service CPU, % of one core: main thread / busiest other thread (the engine) / the rest',
        pulsegate: `${fmt(m.pg_cpu_main)} / ${fmt(m.pg_cpu_busiest)} / ${fmt(m.pg_cpu_rest)}`,
        reference: '',
        ratio: '',
        floor: '',
        verdict: '',
      },
      { metric: 'jobs/s actually sent', pulsegate: fmt(m.pg_sent_per_s), reference: fmt(m.bull_sent_per_s), ratio: '', floor: '', verdict: '' },
    ];
  },
};
