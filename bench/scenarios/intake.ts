// 1. Intake: POST /v1/jobs from 64 keep-alive clients (autocannon), jobs scheduled an hour ahead so no
// delivery runs, next to a bare fastify route that answers 201 without storing anything (the ceiling).
// Afterwards the database is opened and counted: every acknowledged job must be there.

import { bothSides } from '../lib/phases.js';
import { join } from 'node:path';
import { atLeast, fmt, ratio, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import { ROOT_DIR } from '../lib/procs.js';
import { countJobs } from '../lib/seed.js';
import { cpuShare, freePort, sleep } from '../lib/sys.js';
import type { AutocannonResult } from '../loadgen.js';
import { request } from 'undici';

interface Hammered {
  warm: AutocannonResult | null;
  main: AutocannonResult;
  /** CPU during the measured part, percent of one core: the server and the load generator. */
  cpu: { server: number | null; generator: number | null };
}

async function hammer(ctx: Ctx, url: string, body: string, serverPid: number): Promise<Hammered> {
  const call = (seconds: number) =>
    ctx.loadgen.call<AutocannonResult>('autocannon', { url, body, connections: ctx.o.connections, seconds }, (seconds + 60) * 1000);
  const warm = ctx.o.warmupSeconds > 0 ? await call(ctx.o.warmupSeconds) : null;
  const share = cpuShare({ server: serverPid, generator: ctx.loadgen.pid });
  const main = await call(ctx.o.intakeSeconds);
  return { warm, main, cpu: share() };
}

async function pulsegate(ctx: Ctx, body: string, round: number): Promise<Figures> {
  const label = `intake-r${round}`;
  const pg = await ctx.startPulseGate(label);
  let r: Hammered;
  try {
    r = await hammer(ctx, `${pg.url}/v1/jobs`, body, pg.pid);
  } catch (err) {
    await ctx.finishPulseGate(pg, label);
    throw err;
  }
  const dbPath = pg.dbPath;
  await pg.stop();
  const acknowledged = r.main.ok + (r.warm?.ok ?? 0);
  const committed = await countJobs(dbPath);
  await ctx.finishPulseGate(pg, label);
  if (r.main.non2xx || r.main.errors) ctx.log(`intake: PulseGate answered ${r.main.non2xx} non-2xx, ${r.main.errors} errors`);
  ctx.log(`intake: PulseGate ${fmt(r.main.per_s)} jobs/s, p99 ${r.main.p99_ms} ms; ${acknowledged} acknowledged, ${committed} committed`);
  return {
    pg_per_s: r.main.per_s,
    pg_p50_ms: r.main.p50_ms,
    pg_p99_ms: r.main.p99_ms,
    pg_errors: r.main.non2xx + r.main.errors,
    acknowledged,
    committed,
    lost: Math.max(0, acknowledged - committed),
    pg_cpu: r.cpu.server,
    pg_gen_cpu: r.cpu.generator,
  };
}

async function bare(ctx: Ctx, body: string): Promise<Figures> {
  const port = await freePort();
  const child = ctx.procs.spawn('bare-route', join(ROOT_DIR, 'bench/bare-route.ts'), { tsx: true, args: [String(port)] });
  try {
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        const res = await request(`http://127.0.0.1:${port}/readyz`);
        await res.body.dump();
        break;
      } catch (err) {
        if (Date.now() > until) throw new Error(`bare route did not start: ${(err as Error).message}`);
        await sleep(50);
      }
    }
    const r = await hammer(ctx, `http://127.0.0.1:${port}/v1/jobs`, body, child.pid);
    ctx.log(`intake: bare route ${fmt(r.main.per_s)} req/s, p99 ${r.main.p99_ms} ms`);
    return { bare_per_s: r.main.per_s, bare_p50_ms: r.main.p50_ms, bare_p99_ms: r.main.p99_ms, bare_cpu: r.cpu.server, bare_gen_cpu: r.cpu.generator };
  } finally {
    await ctx.procs.stop(child);
  }
}

export const intake: Scenario = {
  name: 'intake',
  title: '1. Intake',
  what: 'POST /v1/jobs from keep-alive clients (autocannon), jobs 1 h ahead; next to a bare fastify route that answers 201 and stores nothing',
  reference: 'bare fastify route',
  async run(ctx, round) {
    const body = JSON.stringify({
      tenant_id: 'bench',
      type: 'order.paid',
      payload: { order: { id: 'ord_[<id>]', amount_cents: 1299, currency: 'EUR', status: 'paid', customer: 'cus_4f9a2c' } },
      destination: { url: ctx.receiverUrl },
      delay_ms: 3_600_000,
    });
    // alternate which goes first, so neither always gets the warmer machine
    const f = await bothSides(round, () => pulsegate(ctx, body, round), () => bare(ctx, body));
    f.ratio = (f.pg_per_s as number) / (f.bare_per_s as number);
    return f;
  },
  rows(m, rounds) {
    const lost = rounds.reduce((a, r) => a + (r.lost ?? 0), 0);
    const acked = rounds.reduce((a, r) => a + (r.acknowledged ?? 0), 0);
    return [
      { metric: 'jobs/s', pulsegate: fmt(m.pg_per_s), reference: fmt(m.bare_per_s), ratio: ratio(m.ratio), floor: '>= 0.5x', verdict: atLeast(m.ratio, 0.5) },
      { metric: 'request p50 / p99', pulsegate: `${fmt(m.pg_p50_ms, 0)} / ${fmt(m.pg_p99_ms, 0)} ms`, reference: `${fmt(m.bare_p50_ms, 0)} / ${fmt(m.bare_p99_ms, 0)} ms`, ratio: '', floor: '', verdict: '' },
      {
        // where the two cores go: a server that needs more CPU per request cannot borrow it from the
        // generator's core
        metric: 'CPU, % of one core: server / load generator',
        pulsegate: `${fmt(m.pg_cpu)} / ${fmt(m.pg_gen_cpu)}`,
        reference: `${fmt(m.bare_cpu)} / ${fmt(m.bare_gen_cpu)}`,
        ratio: '',
        floor: '',
        verdict: '',
      },
      {
        metric: 'acknowledged jobs committed (all rounds)',
        pulsegate: `${fmt(acked - lost)} of ${fmt(acked)}`,
        reference: '',
        ratio: '',
        floor: 'all',
        verdict: acked > 0 ? (lost === 0 ? 'pass' : 'MISS') : '',
      },
    ];
  },
};
