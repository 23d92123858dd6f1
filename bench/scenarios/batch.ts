// 6. Batch intake: jobs created in batches of 500, 8 batches in flight, an hour ahead so no delivery
// runs: POST /v1/jobs/batch (one transaction per request, every job fsynced) against BullMQ's
// Queue.addBulk (one MULTI per call, Redis without fsync). Every acknowledged job must be stored.

import { atLeast, fmt, ratio, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import { bothSides, onBullMQ, onPulseGate } from '../lib/phases.js';
import { countJobs } from '../lib/seed.js';
import type { CreateResult, Target } from '../loadgen.js';

const BATCH = 500;
const IN_FLIGHT = 8;
const HOUR = 3_600_000;

async function createInBatches(ctx: Ctx, target: Target, n: number, who: string): Promise<Figures> {
  const call = (count: number) =>
    ctx.loadgen.call<CreateResult>('bulk', { target, receiverUrl: ctx.receiverUrl, n: count, batch: BATCH, connections: IN_FLIGHT, delayMs: HOUR }, 60_000 + count * 2);
  if (ctx.o.warmupSeconds > 0) await call(Math.max(BATCH, Math.floor(n / 10)));
  const c = await call(n);
  if (c.failed) ctx.log(`batch: ${who}: ${c.failed} jobs failed: ${c.first_error}`);
  const perS = c.ok / ((c.finished_at - c.started_at) / 1000);
  ctx.log(`batch: ${who} ${fmt(perS)} jobs/s in batches of ${BATCH}, call p50 ${fmt(c.request_ms.p50, 1)} p99 ${fmt(c.request_ms.p99, 1)} ms`);
  return { per_s: perS, call_p50_ms: c.request_ms.p50, call_p99_ms: c.request_ms.p99, acknowledged: c.ok };
}

export const batch: Scenario = {
  name: 'batch',
  title: '6. Batch intake',
  what: `jobs in batches of ${BATCH}, ${IN_FLIGHT} calls in flight, 1 h ahead: POST /v1/jobs/batch against BullMQ Queue.addBulk`,
  reference: 'BullMQ addBulk',
  async run(ctx, round) {
    const n = ctx.o.jobs * 5;
    const pg = () =>
      onPulseGate(ctx, `batch-r${round}`, async (t, running) => {
        const f = await createInBatches(ctx, t, n, 'PulseGate');
        const committed = await countJobs(running.dbPath);
        // the warm-up's jobs are in the store too
        const warm = ctx.o.warmupSeconds > 0 ? Math.max(BATCH, Math.floor(n / 10)) : 0;
        return { ...f, lost: Math.max(0, (f.acknowledged as number) + warm - committed) };
      });
    const bull = () => onBullMQ(ctx, `batch-r${round}`, (t) => createInBatches(ctx, t, n, 'BullMQ'));
    const f = await bothSides(round, pg, bull);
    f.ratio = f.bull_per_s ? (f.pg_per_s as number) / f.bull_per_s : null;
    return f;
  },
  rows(m, rounds) {
    const lost = rounds.reduce((a, r) => a + (r.pg_lost ?? 0), 0);
    return [
      { metric: 'jobs/s', pulsegate: fmt(m.pg_per_s), reference: fmt(m.bull_per_s), ratio: ratio(m.ratio), floor: '>= 1.0x', verdict: atLeast(m.ratio, 1) },
      {
        metric: `one call of ${BATCH}: p50 / p99`,
        pulsegate: `${fmt(m.pg_call_p50_ms, 1)} / ${fmt(m.pg_call_p99_ms, 1)} ms`,
        reference: `${fmt(m.bull_call_p50_ms, 1)} / ${fmt(m.bull_call_p99_ms, 1)} ms`,
        ratio: '',
        floor: '',
        verdict: '',
      },
      { metric: 'acknowledged jobs lost (all rounds)', pulsegate: fmt(lost), reference: '', ratio: '', floor: '0', verdict: lost === 0 ? 'pass' : 'MISS' },
    ];
  },
};
