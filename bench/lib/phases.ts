// One side of a comparison: a fresh PulseGate, or a BullMQ worker on a fresh queue, set up around
// a measurement and torn down after it whatever happens. Figures come back prefixed pg_ / bull_.

import type { Ctx, Figures } from './context.js';
import type { Target } from '../loadgen.js';
import type { RunningPulseGate } from './pulsegate.js';

function prefixed(f: Figures, prefix: string): Figures {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [`${prefix}_${k}`, v]));
}

export async function onPulseGate(ctx: Ctx, label: string, fn: (target: Target, pg: RunningPulseGate) => Promise<Figures>): Promise<Figures> {
  const pg = await ctx.startPulseGate(label);
  try {
    return prefixed(await fn({ kind: 'pulsegate', url: pg.url }, pg), 'pg');
  } finally {
    await ctx.finishPulseGate(pg, label);
  }
}

export async function onBullMQ(ctx: Ctx, label: string, fn: (target: Target) => Promise<Figures>): Promise<Figures> {
  const peer = ctx.peer;
  if (!peer) return {};
  const target = ctx.bullTarget(label);
  const where = { host: target.host, port: target.port, prefix: target.prefix, queue: target.queue };
  await peer.call('purge', where, 120_000);
  await peer.call('start', { ...where, concurrency: ctx.o.concurrency, receiverUrl: ctx.receiverUrl });
  try {
    return prefixed(await fn(target), 'bull');
  } finally {
    await peer.call('stop', {}, 60_000);
    await peer.call('purge', where, 120_000);
  }
}


/**
 * Runs both sides of a comparison in one round, PulseGate first in odd rounds and second in even
 * ones, so neither side always gets the warmer (or noisier) machine. Returns their figures merged.
 */
export async function bothSides(round: number, pulsegate: () => Promise<Figures>, reference: () => Promise<Figures>): Promise<Figures> {
  if (round % 2 === 1) {
    const pg = await pulsegate();
    return { ...pg, ...(await reference()) };
  }
  const ref = await reference();
  return { ...ref, ...(await pulsegate()) };
}
