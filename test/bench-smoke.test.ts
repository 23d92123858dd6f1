// The benchmark's quick mode runs end to end: every process starts, every scenario yields figures,
// the JSON lands, and nothing is left running. (The full benchmark is `npm run bench`, not a test.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const SCENARIOS = ['intake', 'delivery', 'e2e', 'paced', 'backlog'];
/** One PulseGate-side figure per scenario that must be a number. */
const KEY_FIGURE: Record<string, string> = {
  intake: 'pg_per_s',
  delivery: 'pg_per_s',
  e2e: 'pg_per_s',
  paced: 'pg_p99_ms',
  backlog: 'pg_rss_peak_mb',
};

interface Report {
  bullmq: { skipped: string | null };
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

describe('npm run bench -- --quick', { timeout: 150_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulsegate-bench-smoke-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every scenario, exits 0 and writes the figures as JSON', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--results-dir', dir], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
      // every process the benchmark starts inherits this marker, so strays can be found afterwards
      env: { ...process.env, PULSEGATE_BENCH_SMOKE: dir },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 140_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    assert.equal(code, 0, `bench --quick failed:\n${out.slice(-4000)}`);

    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, `one JSON file expected in ${dir}, found ${files.join(', ')}`);
    const report = JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8')) as Report;
    for (const name of SCENARIOS) {
      const s = report.scenarios[name];
      assert.ok(s, `scenario ${name} missing`);
      assert.ok(s.rows.length > 0, `scenario ${name} has no table rows`);
      const v = s.median[KEY_FIGURE[name] as string];
      assert.ok(typeof v === 'number' && Number.isFinite(v), `${name}.${KEY_FIGURE[name]} is ${v}`);
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
