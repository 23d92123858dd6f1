// The store's own cost per job, with no HTTP around it: what PulseGate must spend per job on top of
// a route or a client that stores nothing, and so a bound on the intake and delivery ratios.
// Through the SQLite driver on a fresh file in a temporary directory, at NORMAL (no fsync: the
// service syncs in the thread pool, not on the event loop), in the batch sizes the service uses:
//   create    jobs due in an hour, 64 per transaction (intake under load), dedupe on (the default)
//   claim     64 per claim (the engine's claims)
//   complete  16 results per transaction (what the engine gathers in 5 ms at a few thousand/s)
// and the WAL frames (pages) one single-job create and one single-job result write (a low rate).
// Each figure is the median of the rounds. Usage: npm run bench:store -- [--jobs N] [--rounds R]

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { newJobs, success } from './lib/jobs.js';
import { median } from './lib/stats.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const OWNER = 'bench';


async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) * 1000;
}

interface Round {
  create_us: number;
  claim_us: number;
  complete_us: number;
  create_frames: number;
  complete_frames: number;
}

async function round(): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'pulsegate-store-cost-'));
  const path = join(dir, 'pulsegate.db');
  // no checkpoints during the run, so the WAL's growth counts the frames written
  const store = openSqliteStore({ path, synchronous: 'NORMAL', checkpointIntervalMs: 3_600_000, walLimitBytes: 2 ** 40 });
  try {
    await store.migrate();
    const now = Date.now();
    // scheduled an hour ahead to store them; then claimed and completed "an hour later"
    const jobs = newJobs(N, now, now + 3_600_000);
    const later = now + 3_600_001;
    const create = await timed(async () => {
      for (let i = 0; i < N; i += 64) await store.createJobs(jobs.slice(i, i + 64), now);
    });
    const claimed: string[] = [];
    const claim = await timed(async () => {
      for (;;) {
        const c = await store.claimDue(OWNER, later, 60_000, 64);
        if (c.length === 0) break;
        for (const j of c) claimed.push(j.id);
      }
    });
    if (claimed.length !== N) throw new Error(`claimed ${claimed.length} of ${N}`);
    const complete = await timed(async () => {
      for (let i = 0; i < N; i += 16) await store.completeAttempts(claimed.slice(i, i + 16).map((id) => success(id, later, OWNER)), later);
    });
    // one job per transaction, as at a low rate: pages written per commit
    const frameBytes = 4096 + 24;
    const wal = () => statSync(`${path}-wal`).size;
    const single = newJobs(200, later, later).map((j) => ({ ...j, lease: { owner: OWNER, expires_at: later + 60_000 } }));
    let before = wal();
    for (const j of single) await store.createJobs([j], later);
    const createFrames = (wal() - before) / frameBytes / single.length;
    before = wal();
    for (const j of single) await store.completeAttempts([success(j.id, later, OWNER)], later);
    const completeFrames = (wal() - before) / frameBytes / single.length;
    return { create_us: create / N, claim_us: claim / N, complete_us: complete / N, create_frames: createFrames, complete_frames: completeFrames };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) rounds.push(await round());
const m = (k: keyof Round) => median(rounds.map((r) => r[k])) ?? Number.NaN;
const all = (k: keyof Round, digits: number) => rounds.map((r) => r[k].toFixed(digits)).join(' / ');
console.log(`store cost per job, ${N} jobs, median of ${ROUNDS} rounds (rounds in brackets):`);
console.log(`  create, 64 per transaction:   ${m('create_us').toFixed(1)} µs  [${all('create_us', 1)}]`);
console.log(`  claim, 64 per claim:          ${m('claim_us').toFixed(1)} µs  [${all('claim_us', 1)}]`);
console.log(`  result, 16 per transaction:   ${m('complete_us').toFixed(1)} µs  [${all('complete_us', 1)}]`);
console.log(`  WAL pages, one-job create:    ${m('create_frames').toFixed(1)}`);
console.log(`  WAL pages, one-job result:    ${m('complete_frames').toFixed(1)}`);
