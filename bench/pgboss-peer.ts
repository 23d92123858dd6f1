// The PostgreSQL peer: pg-boss 10 in a process of its own, delivering each job's data with
// undici.request to the same receiver PulseGate delivers to. Jobs are created by the load generator
// (send() or insert(), pg-boss's own intake). Two ways to work, both with `concurrency` deliveries
// in flight at most, as PulseGate's WORKER_CONCURRENCY:
//   work   as its users run it: one stock work() worker, batchSize = concurrency, the handler
//          delivering the batch with Promise.all (the maintainer's advice for concurrency in v10),
//          polling at pg-boss's minimum interval, 0.5 s (the default is 2 s). Stock work() waits
//          out that interval after every fetch, full or empty: at most batchSize / 0.5 s.
//   loop   tuned: fetch() as many jobs as there are free slots the moment slots free up, complete()
//          the delivered ones in one call per batch, fetch again at once while there is work
//          (every 10 ms while the queue is empty).
// Driven by bench/run.ts over IPC: start (makes the schema and the queue), stop.

import PgBoss from 'pg-boss';
import { request } from 'undici';
import { serve } from './lib/rpc.js';

export interface PgBossStart {
  connectionString: string;
  queue: string;
  mode: 'work' | 'loop';
  concurrency: number;
  receiverUrl: string;
}

/** pg-boss's floor for pollingIntervalSeconds. */
const MIN_POLLING_S = 0.5;
const LOOP_IDLE_MS = 10;

interface Running {
  boss: PgBoss;
  stop(): Promise<void>;
}

let running: Running | null = null;

function deliverer(receiverUrl: string): (job: PgBoss.Job<object>) => Promise<void> {
  return async (job) => {
    const res = await request(receiverUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': job.id },
      body: JSON.stringify(job.data),
    });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
  };
}

async function stockWorker(boss: PgBoss, a: PgBossStart): Promise<() => Promise<void>> {
  const deliver = deliverer(a.receiverUrl);
  await boss.work<object>(a.queue, { batchSize: a.concurrency, pollingIntervalSeconds: MIN_POLLING_S }, async (jobs) => {
    await Promise.all(jobs.map(deliver));
  });
  return () => boss.offWork(a.queue);
}

/** The tuned loop; returns a function that stops it once its deliveries and completions are done. */
function tunedLoop(boss: PgBoss, a: PgBossStart): () => Promise<void> {
  const deliver = deliverer(a.receiverUrl);
  let stopping = false;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const delivered: string[] = [];
  const failed: string[] = [];
  let settling: Promise<void> | null = null;
  const nudge = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // one complete() (and fail()) call at a time, for everything delivered since the last one
  const settle = () => {
    if (settling || (delivered.length === 0 && failed.length === 0)) return;
    const ok = delivered.splice(0);
    const bad = failed.splice(0);
    settling = (async () => {
      try {
        if (ok.length) await boss.complete(a.queue, ok);
        if (bad.length) await boss.fail(a.queue, bad);
      } catch (err) {
        console.error(`[pgboss-peer] settle: ${(err as Error).message}`);
      }
    })().finally(() => {
      settling = null;
      settle();
      nudge();
    });
  };
  const fetchLoop = (async () => {
    while (!stopping) {
      // fetch when at least a quarter of the slots are free: fewer, larger fetches
      const room = a.concurrency - inFlight;
      if (room < Math.max(1, a.concurrency >> 2)) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      let jobs: PgBoss.Job<object>[] = [];
      try {
        jobs = await boss.fetch<object>(a.queue, { batchSize: room });
      } catch (err) {
        console.error(`[pgboss-peer] fetch: ${(err as Error).message}`);
      }
      if (jobs.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(nudge, LOOP_IDLE_MS);
        });
        continue;
      }
      for (const job of jobs) {
        inFlight++;
        deliver(job).then(
          () => delivered.push(job.id),
          () => failed.push(job.id),
        ).finally(() => {
          inFlight--;
          settle();
          nudge();
        });
      }
    }
  })();
  return async () => {
    stopping = true;
    nudge();
    await fetchLoop;
    // bounded: each pass waits for a delivery or a settle to end
    while (inFlight > 0 || settling || delivered.length || failed.length) {
      settle();
      await (settling ?? new Promise<void>((r) => setTimeout(r, 5)));
    }
  };
}

serve({
  start: async (a: PgBossStart) => {
    if (running) throw new Error('pg-boss is already running');
    const boss = new PgBoss({ connectionString: a.connectionString });
    let stopped = false;
    // after stop, the benchmark drops the database WITH (FORCE): its idle connections' errors are expected
    boss.on('error', (err: Error) => {
      if (!stopped) console.error(`[pgboss-peer] ${err.message}`);
    });
    await boss.start();
    await boss.createQueue(a.queue);
    const stopWork = a.mode === 'work' ? await stockWorker(boss, a) : tunedLoop(boss, a);
    running = {
      boss,
      async stop() {
        await stopWork();
        await boss.stop({ graceful: true, wait: true, close: true, timeout: 30_000 });
        stopped = true;
      },
    };
  },
  stop: async () => {
    const r = running;
    running = null;
    await r?.stop();
  },
});
