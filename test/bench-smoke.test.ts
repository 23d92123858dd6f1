// The benchmark's quick mode runs end to end: every process starts, every scenario yields figures,
// the JSON lands, and nothing is left running. (The full benchmark is `npm run bench`, not a test.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { PG_SERVER_URL, postgresAvailable } from './support/postgres.js';

// PostgreSQL's scenario has a run of its own below (a run without --only includes it when PostgreSQL answers)
const SCENARIOS = ['intake', 'delivery', 'e2e', 'paced', 'backlog', 'batch'];
/** Figures per scenario that must be numbers: PulseGate's own, and the machine's (CPU, one hop). */
const KEY_FIGURES: Record<string, string[]> = {
  intake: ['pg_per_s', 'pg_cpu', 'bare_cpu', 'bare_gen_cpu'],
  delivery: ['pg_per_s', 'pg_cpu', 'undici_cpu', 'undici_receiver_cpu'],
  e2e: ['pg_per_s', 'pg_cpu_main', 'pg_cpu_busiest', 'pg_cpu_rest', 'pg_cpu_generator', 'pg_cpu_receiver'],
  paced: ['pg_p99_ms', 'pg_cpu_ms_per_job', 'pg_cpu_main', 'pg_cpu_busiest', 'hop_p99_ms'],
  backlog: ['pg_rss_peak_mb'],
  batch: ['pg_per_s', 'pg_lost'],
};

interface Report {
  run_id: string;
  bullmq: { skipped: string | null };
  postgres: { pg_boss_version: string; skipped: string | null };
  scenarios: Record<string, { median: Record<string, number | null>; rows: unknown[] }>;
}

/** Pids of live processes whose environment holds marker (Linux /proc; none found elsewhere). */
function strays(marker: string): number[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
    } catch {
      return false; // gone, or not ours to read
    }
  }).map(Number);
}

/** Runs bench/run.ts with args into dir; resolves with its exit code and output. */
async function runBench(args: string[], dir: string, killAfterMs: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args, '--results-dir', dir], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
    // every process the benchmark starts inherits this marker, so strays can be found afterwards
    env: { ...process.env, PULSEGATE_BENCH_SMOKE: dir },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), killAfterMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, out };
}

function onlyReport(dir: string): Report {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.equal(files.length, 1, `one JSON file expected in ${dir}, found ${files.join(', ')}`);
  return JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8')) as Report;
}

describe('npm run bench -- --quick', { timeout: 150_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulsegate-bench-smoke-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every scenario, exits 0 and writes the figures as JSON', async () => {
    const { code, out } = await runBench(['--quick', '--only', SCENARIOS.join(',')], dir, 140_000);
    assert.equal(code, 0, `bench --quick failed:\n${out.slice(-4000)}`);
    const report = onlyReport(dir);
    for (const name of SCENARIOS) {
      const s = report.scenarios[name];
      assert.ok(s, `scenario ${name} missing`);
      assert.ok(s.rows.length > 0, `scenario ${name} has no table rows`);
      for (const key of KEY_FIGURES[name] ?? []) {
        const v = s.median[key];
        assert.ok(typeof v === 'number' && Number.isFinite(v), `${name}.${key} is ${v}`);
      }
    }
    // the peer's figures are there unless it was skipped (no Redis), and then it says why
    if (report.bullmq.skipped === null) {
      assert.ok(Number.isFinite(report.scenarios.e2e?.median.bull_per_s), 'BullMQ end-to-end figure missing');
    } else {
      assert.match(report.bullmq.skipped, /skipped/);
    }
    assert.equal(readdirSync(dir).includes('latest.md'), false, 'quick mode must not replace latest.md');
    assert.deepEqual(strays(`PULSEGATE_BENCH_SMOKE=${dir}`), [], 'processes left running after the benchmark exited');
  });
});

// top-level await: without PostgreSQL this registers a failing (CI) or skipped test instead
const withPostgres = await postgresAvailable('npm run bench -- --quick --only postgres');
describe('npm run bench -- --quick --only postgres', { timeout: 150_000, skip: !withPostgres && 'PostgreSQL not reachable' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulsegate-bench-smoke-pg-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('measures PulseGate with 1 and 2 instances and the three pg-boss sides, then drops every database it made', async () => {
    const { code, out } = await runBench(['--quick', '--only', 'postgres', '--no-bullmq'], dir, 140_000);
    assert.equal(code, 0, `bench --quick --only postgres failed:\n${out.slice(-4000)}`);
    const report = onlyReport(dir);
    assert.equal(report.postgres.skipped, null);
    assert.match(report.postgres.pg_boss_version, /^10\./);
    const s = report.scenarios.postgres;
    assert.ok(s && s.rows.length > 0, 'the postgres scenario has no table rows');
    for (const side of ['pg1', 'pg2', 'boss', 'sendloop', 'tuned']) {
      for (const key of ['per_s', 'commits_per_job', 'rows_per_job']) {
        const v = s.median[`${side}_${key}`];
        assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `postgres.${side}_${key} is ${v}`);
      }
      // CPU at /proc's 10 ms tick: a quick run may take less than one, so a number, maybe 0
      for (const key of ['cpu_postgres', 'cpu_loadgen', 'cpu_receiver', 'cpu_machine']) {
        const v = s.median[`${side}_${key}`];
        assert.ok(typeof v === 'number' && v >= 0, `postgres.${side}_${key} is ${v}`);
      }
      assert.equal(s.median[`${side}_duplicates`], 0, `${side} delivered a job twice`);
    }
    for (const key of ['pg2_cpu_service_1', 'pg2_cpu_service_2', 'ratio_pg1_boss', 'ratio_pg2_tuned']) {
      assert.ok(Number.isFinite(s.median[key]), `postgres.${key} is ${s.median[key]}`);
    }
    const admin = new pg.Client({ connectionString: PG_SERVER_URL });
    await admin.connect();
    try {
      const left = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [`pgbench_${report.run_id}_`]);
      assert.deepEqual(left.rows.map((r) => r.datname), [], 'databases left behind');
    } finally {
      await admin.end();
    }
    assert.deepEqual(strays(`PULSEGATE_BENCH_SMOKE=${dir}`), [], 'processes left running after the benchmark exited');
  });
});

describe('npm run bench:store', { timeout: 60_000 }, () => {
  it('prints the store cost per job and the pages per one-job commit', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/store-cost.ts', '--jobs', '640', '--rounds', '1'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, out);
    for (const line of ['create, 64 per transaction', 'claim, 64 per claim', 'result, 16 per transaction']) {
      assert.match(out, new RegExp(`${line}:\\s+\\d+\\.\\d µs`), out);
    }
    // a one-job commit writes at least the table's page and an index page
    const pages = [...out.matchAll(/WAL pages, one-job (?:create|result):\s+(\d+\.\d)/g)].map((m) => Number(m[1]));
    assert.equal(pages.length, 2, out);
    for (const p of pages) assert.ok(p >= 2, out);
  });
});
