// 6. Soak (only when asked for: `npm run bench -- --only soak [--duration S] [--soak-rate R]`):
// PulseGate with its default settings takes `rate` jobs/s for `duration` seconds into 4 receivers
// (one origin each, 4 tenants: 16 lanes) that answer 500 to 10% of requests and never answer 1%;
// each job has timeout_ms 2000 and the default retry policy. Sampled every second: the backlog (jobs
// created and not yet tried at all, from the receivers' side), the service's RSS and its WAL's size.
// Then it waits for every job to end (a 2xx at a receiver, or the DLQ) and counts what was lost.

import { join } from 'node:path';
import { request } from 'undici';
import { atMost, fmt, type Ctx, type Figures, type Scenario } from '../lib/context.js';
import { BENCH_DIR } from '../lib/procs.js';
import { startPulseGate, removeDir } from '../lib/pulsegate.js';
import { sizeOf, sleep } from '../lib/sys.js';
import type { SoakProgress, SoakStats } from '../soak-load.js';

const ORIGINS = 4;
const FAIL_500 = 0.1;
const HANG = 0.01;
const TIMEOUT_MS = 2000;
/** Jobs left unfinished this long after the load stops count as lost (retries back off up to 30 s). */
const SETTLE_MS = 240_000;

async function metric(url: string, name: string, labels = ''): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function soakRun(ctx: Ctx, round: number): Promise<Figures> {
  const seconds = ctx.o.soakSeconds;
  const rate = ctx.o.soakRate;
  const child = ctx.procs.spawn('soak-load', join(BENCH_DIR, 'soak-load.ts'), { tsx: true, ipc: true });
  const load = child.rpc!;
  await load.ready();
  const label = `soak-r${round}`;
  // default settings: nothing but what every bench PulseGate needs (port, file, loopback receivers)
  const pg = await startPulseGate(ctx.procs, ctx.tmpFor(label), { SQLITE_SYNCHRONOUS: ctx.sync, LOG_LEVEL: ctx.o.logLevel }, { env: ctx.o.pgEnv });
  try {
    await load.call('receivers', { origins: ORIGINS, fail500: FAIL_500, hang: HANG });
    const samples: { t: number; backlog: number; rss: number | null; wal_mb: number }[] = [];
    let sampling = true;
    const t0 = Date.now();
    const sampler = (async () => {
      while (sampling) {
        const p = await load.call<SoakProgress>('progress');
        samples.push({ t: (Date.now() - t0) / 1000, backlog: p.created - p.first_attempts, rss: pg.rssMb(), wal_mb: sizeOf([`${pg.dbPath}-wal`]) / 2 ** 20 });
        const last = samples[samples.length - 1]!;
        if (samples.length % 30 === 0) ctx.log(`soak: ${last.t.toFixed(0)} s: created ${p.created}, backlog ${last.backlog}, RSS ${fmt(last.rss)} MB, WAL ${fmt(last.wal_mb, 1)} MB`);
        await sleep(1000);
      }
    })();
    const sent = await load.call<SoakProgress>('run', { pgUrl: pg.url, rate, seconds, connections: ctx.o.connections, timeoutMs: TIMEOUT_MS }, (seconds + 120) * 1000);
    const loadSamples = samples.length;
    // settle: every job either got its 2xx or went to the DLQ
    const until = Date.now() + SETTLE_MS;
    let failed = 0;
    for (;;) {
      const p = await load.call<SoakProgress>('progress');
      failed = await metric(pg.url, 'pulsegate_jobs_completed_total', '{status="failed"}');
      if (p.first_2xx + failed >= sent.created || Date.now() > until) break;
      await sleep(1000);
    }
    sampling = false;
    await sampler;
    const s = await load.call<SoakStats>('stats');
    const during = samples.slice(0, loadSamples);
    const rss = during.map((x) => x.rss ?? 0);
    const minute = Math.min(60, Math.floor(rss.length / 2));
    const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
    const maxBacklog = Math.max(0, ...during.map((x) => x.backlog));
    const lost = sent.created - s.first_2xx - failed;
    ctx.log(
      `soak: ${sent.created} created (${sent.failed_creates} failed creates) in ${seconds} s; backlog max ${maxBacklog} (${fmt(maxBacklog / rate, 2)} s of load); ` +
        `first 2xx p50 ${fmt(s.latency_first_2xx_ms.p50, 1)} p99 ${fmt(s.latency_first_2xx_ms.p99, 0)} ms; RSS first minute ${fmt(avg(rss.slice(0, minute)))} MB, ` +
        `last minute ${fmt(avg(rss.slice(-minute)))} MB, max ${fmt(Math.max(...rss))} MB; WAL max ${fmt(Math.max(...during.map((x) => x.wal_mb)), 1)} MB; ` +
        `requests ${s.requests} (500: ${s.answered_500}, hung: ${s.hung}); DLQ ${failed}; lost ${lost}; duplicate 2xx ${s.duplicate_2xx}`,
    );
    return {
      created: sent.created,
      failed_creates: sent.failed_creates,
      created_per_s: sent.created / seconds,
      backlog_max: maxBacklog,
      backlog_max_s: maxBacklog / rate,
      first_2xx_p50_ms: s.latency_first_2xx_ms.p50,
      first_2xx_p99_ms: s.latency_first_2xx_ms.p99,
      rss_first_minute_mb: avg(rss.slice(0, minute)),
      rss_last_minute_mb: avg(rss.slice(-minute)),
      rss_max_mb: Math.max(...rss),
      wal_max_mb: Math.max(...during.map((x) => x.wal_mb)),
      requests: s.requests,
      answered_500: s.answered_500,
      hung: s.hung,
      dlq: failed,
      lost,
      duplicate_2xx: s.duplicate_2xx,
    };
  } finally {
    await load.call('close').catch(() => undefined);
    await ctx.procs.stop(child);
    await pg.stop();
    removeDir(pg.dir);
  }
}

export const soak: Scenario = {
  name: 'soak',
  title: '6. Soak',
  what: `default settings; jobs into ${ORIGINS} receivers answering 500 to ${FAIL_500 * 100}% and never answering ${HANG * 100}% (timeout_ms ${TIMEOUT_MS}); backlog = jobs created and not yet tried`,
  reference: 'floor',
  run: soakRun,
  rows(m) {
    return [
      { metric: 'jobs created per s', pulsegate: fmt(m.created_per_s), reference: '', ratio: '', floor: '', verdict: '' },
      { metric: 'backlog at its worst (seconds of load)', pulsegate: `${fmt(m.backlog_max)} (${fmt(m.backlog_max_s, 2)} s)`, reference: '', ratio: '', floor: '< 5 s', verdict: atMost(m.backlog_max_s, 5) },
      { metric: 'creation to first 2xx p50', pulsegate: fmt(m.first_2xx_p50_ms, 1, 'ms'), reference: '', ratio: '', floor: '< 50 ms', verdict: atMost(m.first_2xx_p50_ms, 50) },
      { metric: 'creation to first 2xx p99', pulsegate: fmt(m.first_2xx_p99_ms, 0, 'ms'), reference: '', ratio: '', floor: '', verdict: '' },
      { metric: 'RSS first minute / last minute / max', pulsegate: `${fmt(m.rss_first_minute_mb)} / ${fmt(m.rss_last_minute_mb)} / ${fmt(m.rss_max_mb)} MB`, reference: '', ratio: '', floor: 'max < 150 MB', verdict: atMost(m.rss_max_mb, 150) },
      { metric: 'WAL at its largest', pulsegate: fmt(m.wal_max_mb, 1, 'MB'), reference: '', ratio: '', floor: '', verdict: '' },
      { metric: 'jobs lost (neither a 2xx nor in the DLQ after the settle)', pulsegate: fmt(m.lost), reference: '', ratio: '', floor: '0', verdict: atMost(m.lost, 0) },
      { metric: 'into the DLQ (5 attempts failed) / duplicate 2xx', pulsegate: `${fmt(m.dlq)} / ${fmt(m.duplicate_2xx)}`, reference: '', ratio: '', floor: '', verdict: '' },
    ];
  },
};
