// `npm run bench`: PulseGate side by side with the machine's own ceilings and with BullMQ.
//
// Builds dist/ from this checkout, then starts every party as a process of its own on 127.0.0.1: the
// receiver (bench/receiver.ts), the load generator (bench/loadgen.ts), the BullMQ worker
// (bench/bullmq-peer.ts, when Redis answers), the pg-boss worker (bench/pgboss-peer.ts, for the
// PostgreSQL scenario, when PostgreSQL answers), and for each measurement a fresh PulseGate
// (dist/main.js on a fresh SQLite file, or on a fresh PostgreSQL database) or the bare fastify route. Each figure is the median of the rounds; each
// comparison is a ratio taken within one round, then its median. Prints a table, writes
// bench/results/<timestamp>.json, and (except --quick) bench/results/latest.md.
//
//   npm run bench                       full run (3 rounds, 1M-job backlog; ~15 minutes, ~8 more with PostgreSQL)
//   npm run bench -- --quick            smoke run: tiny sizes, one round
//   npm run bench -- --only soak        the soak (default settings, failing receivers; 10 minutes): only when named
//   npm run bench -- --only postgres    PulseGate on PostgreSQL (1 and 2 instances) against pg-boss (~2 minutes a round);
//                                       in a run without --only when PostgreSQL answers at 127.0.0.1:5432, else skipped with a note
//   options: --duration S --soak-rate R (soak) --rounds N --backlog-rounds N --jobs N --backlog N --only intake,delivery,e2e,paced,backlog,batch,postgres
//            --seconds S (intake) --warmup S --paced-rate R --paced-seconds S --connections N --concurrency N
//            --sync FULL|NORMAL|name=MODE,... --env NAME=VALUE (to PulseGate, repeatable) --log-level L --no-bullmq --cpu-prof --no-build --results-dir DIR

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { Ctx, Figures, Options, Profile, Row, Scenario } from './lib/context.js';
import { BENCH_DIR, Procs, ROOT_DIR } from './lib/procs.js';
import { topFrames } from './lib/profile.js';
import { startPulseGate, removeDir, type PulseGateSettings } from './lib/pulsegate.js';
import { NODE_FLAGS } from '../src/node-flags.js';
import { median } from './lib/stats.js';
import { machine, packageVersion, redisAnswers } from './lib/sys.js';
import { backlog } from './scenarios/backlog.js';
import { batch } from './scenarios/batch.js';
import { delivery } from './scenarios/delivery.js';
import { e2e } from './scenarios/e2e.js';
import { intake } from './scenarios/intake.js';
import { paced, pacedWarmupSeconds } from './scenarios/paced.js';
import { soak } from './scenarios/soak.js';
import { postgres } from './scenarios/postgres.js';
import { dropLeftoverDatabasesNow, postgresUnreachable } from './lib/postgres.js';

const SCENARIOS: Scenario[] = [intake, delivery, e2e, paced, backlog, batch, postgres, soak];
/** Run only when named in --only: the soak takes 10 minutes by itself. */
const ON_REQUEST: Scenario[] = [soak];
const REDIS = { host: '127.0.0.1', port: 6379 };
/** SQLITE_SYNCHRONOUS per scenario unless --sync says otherwise (FULL is the service's default). */
const DEFAULT_SYNC: Record<string, 'FULL' | 'NORMAL'> = {};

function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'backlog-rounds': { type: 'string' },
      jobs: { type: 'string' },
      backlog: { type: 'string' },
      seconds: { type: 'string' },
      'paced-rate': { type: 'string' },
      'paced-seconds': { type: 'string' },
      duration: { type: 'string' },
      'soak-rate': { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      concurrency: { type: 'string' },
      sync: { type: 'string' },
      'log-level': { type: 'string' },
      env: { type: 'string', multiple: true },
      only: { type: 'string' },
      'no-bullmq': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'results-dir': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (v.help) {
    console.log('usage: npm run bench -- [--quick] [--rounds N] [--backlog-rounds N] [--jobs N] [--backlog N] [--only a,b]\n' +
      '  [--seconds S] [--warmup S] [--duration S] [--soak-rate R] [--paced-rate R] [--paced-seconds S] [--connections N] [--concurrency N] [--sync FULL|NORMAL|name=MODE,...]\n' +
      '  [--env NAME=VALUE]... [--log-level L] [--no-bullmq] [--cpu-prof] [--no-build] [--results-dir DIR]\n' +
      `  scenarios: ${SCENARIOS.map((s) => s.name).join(', ')} (peer = e2e,paced,backlog,batch; postgres when PostgreSQL answers; soak only when named)`);
    process.exit(0);
  }
  const int = (name: string, s: string | undefined, def: number, min = 1): number => {
    if (s === undefined) return def;
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got ${s})`);
    return n;
  };
  const quick = v.quick;
  const rounds = int('rounds', v.rounds, quick ? 1 : 3);
  let only: string[] | null = null;
  if (v.only) {
    only = v.only.split(',').flatMap((s) => (s.trim() === 'peer' ? ['e2e', 'paced', 'backlog', 'batch'] : [s.trim()]));
    const unknown = only.filter((s) => !SCENARIOS.some((x) => x.name === s));
    if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}, peer`);
  }
  const sync: Options['sync'] = Object.fromEntries(SCENARIOS.map((s) => [s.name, DEFAULT_SYNC[s.name] ?? 'FULL']));
  for (const part of (v.sync ?? '').split(',').filter(Boolean)) {
    const [a, b] = part.includes('=') ? part.split('=') : [null, part];
    const mode = (b ?? '').toUpperCase();
    if (mode !== 'FULL' && mode !== 'NORMAL') throw new Error(`--sync: ${part}: the mode must be FULL or NORMAL`);
    if (a === null) for (const k of Object.keys(sync)) sync[k] = mode;
    else if (a in sync) sync[a] = mode;
    else throw new Error(`--sync: unknown scenario ${a}`);
  }
  return {
    quick,
    rounds,
    // a round of 1M takes ~4 minutes here (PulseGate stores ~5k jobs/s through its API): all three
    // make a full run ~15 minutes; --backlog-rounds 1 halves that
    backlogRounds: Math.min(rounds, int('backlog-rounds', v['backlog-rounds'], rounds)),
    jobs: int('jobs', v.jobs, quick ? 500 : 20_000),
    backlog: int('backlog', v.backlog, quick ? 2_000 : 1_000_000),
    intakeSeconds: int('seconds', v.seconds, quick ? 1 : 5),
    warmupSeconds: int('warmup', v.warmup, quick ? 0 : 2, 0),
    pacedRate: int('paced-rate', v['paced-rate'], quick ? 200 : 1000),
    pacedSeconds: int('paced-seconds', v['paced-seconds'], quick ? 2 : 10),
    soakSeconds: int('duration', v.duration, quick ? 5 : 600),
    soakRate: int('soak-rate', v['soak-rate'], quick ? 200 : 1000),
    connections: int('connections', v.connections, 64),
    concurrency: int('concurrency', v.concurrency, 64),
    sync,
    logLevel: v['log-level'] ?? 'info',
    pgEnv: Object.fromEntries(
      (v.env ?? []).map((kv) => {
        const eq = kv.indexOf('=');
        if (eq < 1) throw new Error(`--env wants NAME=VALUE (got ${kv})`);
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    ),
    only,
    bullmq: !v['no-bullmq'],
    cpuProf: v['cpu-prof'],
    build: !v['no-build'],
    resultsDir: v['results-dir'] ?? join(BENCH_DIR, 'results'),
  };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

// ── the table ─────────────────────────────────────────────────────────────────────────────────────
const COLUMNS = ['scenario', 'metric', 'PulseGate', 'reference', 'ratio', 'floor', 'verdict'] as const;

function tableCells(results: Result[]): string[][] {
  const lines: string[][] = [];
  for (const r of results) {
    r.rows.forEach((row, i) => {
      lines.push([i === 0 ? `${r.title} vs ${r.reference}` : '', row.metric, row.pulsegate, i === 0 ? `${row.reference}` : row.reference, row.ratio, row.floor, row.verdict]);
    });
  }
  return lines;
}

function textTable(results: Result[]): string {
  const cells = [COLUMNS as unknown as string[], ...tableCells(results)];
  const widths = COLUMNS.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((x, c) => x.padEnd(widths[c] as number)).join('  ').trimEnd();
  return [line(cells[0] as string[]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function markdownTable(results: Result[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`];
  for (const r of tableCells(results)) out.push(`| ${r.map(esc).join(' | ')} |`);
  return out.join('\n');
}

function sizes(o: Options): Record<string, string> {
  return {
    intake: `${o.intakeSeconds} s measured after ${o.warmupSeconds} s of warm-up, ${o.connections} clients`,
    delivery: `${o.jobs.toLocaleString('en-US')} jobs, ${o.concurrency} in flight`,
    e2e: `${o.jobs.toLocaleString('en-US')} jobs, ${o.connections} clients, ${o.concurrency} in flight`,
    paced: `${o.pacedRate.toLocaleString('en-US')} jobs/s for ${o.pacedSeconds} s after ${pacedWarmupSeconds(o.warmupSeconds, o.pacedRate)} s at the same rate`,
    backlog: `${o.backlog.toLocaleString('en-US')} jobs, ${o.connections} clients, ${o.backlogRounds} round(s)`,
    // batch.ts creates five times --jobs, after a tenth of that as warm-up
    batch: `${(o.jobs * 5).toLocaleString('en-US')} jobs`,
    soak: `${o.soakRate.toLocaleString('en-US')} jobs/s for ${o.soakSeconds} s, PulseGate with default settings (WORKER_CONCURRENCY not set)`,
    postgres: `${o.jobs.toLocaleString('en-US')} jobs (pg-boss stock: a tenth), ${o.connections} clients, ${o.concurrency} in flight per PulseGate instance and for pg-boss, PG_POOL_MAX default`,
  };
}

function legend(o: Options, results: Result[]): string[] {
  const sz = sizes(o);
  return results.map((r) => `- ${r.title} (${sz[r.name]}${r.name === 'postgres' ? '' : `; SQLITE_SYNCHRONOUS=${o.sync[r.name]}`}): ${r.what}.`);
}

interface Result {
  name: string;
  what: string;
  title: string;
  reference: string;
  rounds: Figures[];
  median: Figures;
  rows: Row[];
}

function medians(rounds: Figures[]): Figures {
  const keys = new Set(rounds.flatMap((r) => Object.keys(r)));
  return Object.fromEntries([...keys].map((k) => [k, median(rounds.map((r) => r[k]))]));
}

// ── main ──────────────────────────────────────────────────────────────────────────────────────────
async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const started = new Date();
  const log = (msg: string) => console.error(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)}s] ${msg}`);
  const procs = new Procs();
  const tmp = mkdtempSync(join(tmpdir(), 'pulsegate-bench-'));
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.error(`[bench] ${sig}: stopping every process it started`);
    void procs.stopAll(5000).finally(() => {
      rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => {
    procs.killAllNow();
    dropLeftoverDatabasesNow();
    rmSync(tmp, { recursive: true, force: true });
  });

  const settings: Omit<PulseGateSettings, 'SQLITE_SYNCHRONOUS'> = { WORKER_CONCURRENCY: o.concurrency, LOG_LEVEL: o.logLevel };
  const selected = SCENARIOS.filter((s) => (o.only ? o.only.includes(s.name) : !ON_REQUEST.includes(s)));
  // PostgreSQL: measured when it answers; a run that did not name it goes on without it, with a note
  let postgresSkipped: string | null = null;
  if (selected.includes(postgres)) {
    const why = await postgresUnreachable();
    if (why !== null && o.only) throw new Error(`--only postgres: ${why}`);
    if (why !== null) {
      postgresSkipped = `PostgreSQL scenario skipped: ${why}`;
      selected.splice(selected.indexOf(postgres), 1);
    }
  }
  const mach = machine();
  log(`${mach.cpu}, ${mach.cores} cores, ${mach.memory_gb} GB, Node ${mach.node}; ${o.quick ? 'quick' : 'full'} run, ${o.rounds} round(s)`);

  if (o.build) {
    log('building dist/ from this checkout');
    execFileSync(process.execPath, [join(ROOT_DIR, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT_DIR, stdio: 'inherit' });
  } else if (newestMtime(join(ROOT_DIR, 'src')) > newestMtime(join(ROOT_DIR, 'dist'))) {
    // the delivery scenario seeds through src/ while the service runs dist/: they must agree
    throw new Error('--no-build: dist/ is older than src/; run without --no-build');
  }

  const receiverChild = procs.spawn('receiver', join(BENCH_DIR, 'receiver.ts'), { tsx: true, ipc: true });
  const loadgenChild = procs.spawn('loadgen', join(BENCH_DIR, 'loadgen.ts'), { tsx: true, ipc: true });
  const receiver = receiverChild.rpc!;
  const loadgen = loadgenChild.rpc!;
  await Promise.all([receiver.ready(), loadgen.ready()]);
  const { url: receiverUrl } = await receiver.call<{ url: string }>('url');

  const wantsPeer = selected.some((s) => s === e2e || s === paced || s === backlog || s === batch);
  let peerSkipped: string | null = null;
  let peer = null;
  if (!o.bullmq) peerSkipped = 'BullMQ peer skipped: --no-bullmq';
  else if (!wantsPeer) peerSkipped = 'BullMQ peer not needed by the selected scenarios';
  else if (!(await redisAnswers(REDIS.host, REDIS.port))) peerSkipped = `BullMQ peer skipped: no Redis answered at ${REDIS.host}:${REDIS.port}`;
  else {
    const peerChild = procs.spawn('bullmq-peer', join(BENCH_DIR, 'bullmq-peer.ts'), { tsx: true, ipc: true });
    peer = peerChild.rpc!;
    await peer.ready();
  }
  if (peerSkipped && wantsPeer) log(peerSkipped);

  const profiles: Profile[] = [];
  const runId = `${started.getTime().toString(36)}${process.pid.toString(36)}`;
  const ctx: Ctx = {
    o,
    procs,
    runId,
    receiver,
    receiverUrl,
    loadgen,
    peer,
    peerSkipped,
    redis: REDIS,
    log,
    tmpFor: (label) => join(tmp, label),
    sync: 'FULL',
    startPulseGate: (label, dir, env) =>
      startPulseGate(procs, dir ?? join(tmp, label), { ...settings, SQLITE_SYNCHRONOUS: ctx.sync }, { cpuProf: o.cpuProf, env: { ...env, ...o.pgEnv } }),
    async finishPulseGate(pg, label) {
      for (const prof of await pg.stop()) {
        const keep = join(o.resultsDir, 'profiles');
        mkdirSync(keep, { recursive: true });
        const file = join(keep, `${runId}-${label}-${prof.thread.replace(' ', '-')}.cpuprofile`);
        execFileSync('cp', [prof.file, file]);
        profiles.push({ label: `${label}, ${prof.thread}`, file: relative(ROOT_DIR, file), ...topFrames(file) });
      }
      removeDir(pg.dir);
    },
    bullTarget: (label) => ({ kind: 'bullmq', queue: `${runId}-${label}`, prefix: 'pulsegate-bench', ...REDIS }),
  };

  const perScenario = new Map<Scenario, Figures[]>(selected.map((s) => [s, []]));
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const s of selected) {
        if (s === backlog && round > o.backlogRounds) continue;
        ctx.sync = o.sync[s.name] ?? 'FULL';
        log(`round ${round}/${o.rounds}: ${s.title}${s === postgres ? '' : ` (SQLite ${ctx.sync})`}`);
        perScenario.get(s)!.push(await s.run(ctx, round));
      }
    }
  } finally {
    await procs.stopAll();
  }

  const results: Result[] = selected.map((s) => {
    const rounds = perScenario.get(s)!;
    const m = medians(rounds);
    return { name: s.name, title: s.title, what: s.what, reference: s.reference, rounds, median: m, rows: s.rows(m, rounds) };
  });

  const finished = new Date();
  const bullmqVersion = packageVersion('bullmq');
  const pgBossVersion = packageVersion('pg-boss');
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const onlyOnRequest = selected.every((s) => ON_REQUEST.includes(s));
  const settingsText =
    `PulseGate: node ${NODE_FLAGS.join(' ')} dist/main.js (the production command), ` +
    `${onlyOnRequest ? '' : `WORKER_CONCURRENCY=${o.concurrency}, `}LOG_LEVEL=${o.logLevel}, ` +
    `${Object.entries(o.pgEnv).map(([k, x]) => `${k}=${x}, `).join('')}other settings default. ` +
    (onlyOnRequest
      ? `Load generator: ${o.connections} keep-alive clients.`
      : `Load generator: ${o.connections} keep-alive clients. Deliveries in flight: ${o.concurrency} (PulseGate, BullMQ worker, raw undici). ` +
        `BullMQ ${bullmqVersion}: Queue.add with attempts 5, exponential backoff, removeOnComplete; Redis keeps nothing on disk.` +
        (selected.includes(postgres) ? ` pg-boss ${pgBossVersion} (default settings but the worker's): retryLimit 4, retryDelay 1 s, retryBackoff. PostgreSQL at 127.0.0.1:5432 with the server's own settings.` : ''));
  const report = {
    schema: 1,
    run_id: runId,
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_s: Math.round((finished.getTime() - started.getTime()) / 1000),
    command,
    machine: mach,
    options: o,
    settings: settingsText,
    bullmq: { version: bullmqVersion, skipped: peerSkipped },
    postgres: { pg_boss_version: pgBossVersion, skipped: postgresSkipped },
    scenarios: Object.fromEntries(results.map((r) => [r.name, { title: r.title, what: r.what, size: sizes(o)[r.name], sqlite_synchronous: o.sync[r.name], reference: r.reference, median: r.median, rounds: r.rounds, rows: r.rows }])),
    profiles,
  };

  mkdirSync(o.resultsDir, { recursive: true });
  const jsonPath = join(o.resultsDir, `${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);

  const misses = results.flatMap((r) => r.rows.filter((row) => row.verdict === 'MISS').map((row) => `${r.title}: ${row.metric}`));
  console.log('');
  console.log(textTable(results));
  console.log('');
  console.log(legend(o, results).join('\n'));
  console.log(settingsText);
  if (peerSkipped && wantsPeer) console.log(peerSkipped);
  if (postgresSkipped) console.log(postgresSkipped);
  for (const p of profiles) {
    console.log(`\nCPU profile ${p.label} (${p.file}): ${p.busy_ms} ms busy, ${p.idle_ms} ms idle; top frames by self time:`);
    for (const f of p.frames) console.log(`  ${String(f.self_pct).padStart(5)}%  ${String(f.self_ms).padStart(6)} ms  ${f.frame}`);
  }
  console.log(`\nfigures: ${relative(process.cwd(), jsonPath)}`);

  // latest.md is the full comparison the README quotes: a run of on-request scenarios alone keeps it
  if (!o.quick && !onlyOnRequest) {
    const md = [
      '<!-- written by `npm run bench`; do not edit by hand -->',
      `Measured ${finished.toISOString().slice(0, 10)} on ${mach.cpu}, ${mach.cores} cores, ${mach.memory_gb} GB RAM, Linux ${mach.kernel}, Node ${mach.node}, commit ${mach.commit}.`,
      `Command: \`${command}\` (${o.rounds} rounds${o.backlogRounds < o.rounds ? `, backlog ${o.backlogRounds}` : ''}; each figure the median of the rounds, each ratio the median of per-round ratios; ${report.duration_s} s in all).`,
      '',
      markdownTable(results),
      '',
      ...legend(o, results),
      '',
      settingsText,
      peerSkipped && wantsPeer ? `\n${peerSkipped}` : '',
      postgresSkipped ? `\n${postgresSkipped}` : '',
    ].join('\n');
    // a run of the PostgreSQL scenario alone keeps the full table and writes its own
    const latest = selected.every((s) => s === postgres) ? 'latest-postgres.md' : 'latest.md';
    writeFileSync(join(o.resultsDir, latest), `${md.trimEnd()}\n`);
    console.log(`table: ${relative(process.cwd(), join(o.resultsDir, latest))}`);
  }
  if (misses.length) console.log(`\nfloors missed:\n  ${misses.join('\n  ')}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
