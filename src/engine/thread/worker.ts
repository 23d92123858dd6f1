// The engine thread (see engine-thread.ts): its own store connection (or PostgreSQL pool), its own
// undici Agent and signer, the Engine itself. It answers the main thread's calls and sends its
// events back in batches (at most every 5 ms).

import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../../clock.js';
import { EventBus, type PulseEvent } from '../../observability/events.js';
import { attachEventLogger, createLogger } from '../../observability/logger.js';
import { createTracing } from '../../observability/tracing.js';
import { guardStore } from '../../store/faults.js';
import { openConfiguredStore } from '../../store/open.js';
import { WriteLock } from '../../store/sqlite/write-lock.js';
import { createEngine } from '../setup.js';
import { SLOT, type FromEngine, type ToEngine, type WorkerInit } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('the engine worker runs in a worker thread');
const { config, secrets, owner, shared, writeLock } = workerData as WorkerInit;
const slots = new Int32Array(shared);
const send = (m: FromEngine) => port.postMessage(m);

const events = new EventBus();
let batch: PulseEvent[] = [];
let log = '';
let flushSoon = false;
let publish = (): void => undefined;

/** This isolate's heap, for /metrics (the main thread's nodejs_heap_* figures are its own). */
function publishHeap(): void {
  const h = getHeapStatistics();
  const young = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0;
  Atomics.store(slots, SLOT.heapKib, Math.round(h.total_heap_size / 1024));
  Atomics.store(slots, SLOT.heapUsedKib, Math.round(h.used_heap_size / 1024));
  Atomics.store(slots, SLOT.youngKib, Math.round(young / 1024));
}
/**
 * Events wait up to this long to go over together: at low rates each delivery would otherwise wake
 * the main thread once more for its metrics and log line alone (a wake-up costs ~0.1 ms here).
 */
const EVENTS_GATHER_MS = 5;
const soon = () => {
  if (flushSoon) return;
  flushSoon = true;
  setTimeout(flush, EVENTS_GATHER_MS);
};
events.on((e) => {
  batch.push(e);
  soon();
});
// the engine's log lines are formatted here and written by the main thread (see protocol.ts)
attachEventLogger(events, createLogger(config.LOG_LEVEL, { write: (line: string) => void ((log += line), soon()) }));

function flush(): void {
  flushSoon = false;
  publish();
  if (batch.length === 0 && log === '') return;
  send({ t: 'events', events: batch, log });
  batch = [];
  log = '';
}

try {
  // the main thread migrated the database; this connection runs the checkpoints (see
  // LockedCheckpointer); a nested store thread would only add a hop
  const store = guardStore(await openConfiguredStore({ ...config, SQLITE_THREAD: false }, { writeLock: new WriteLock(writeLock), checkpointClock: systemClock }));
  // attempt spans are made here, create spans on the main thread; the SDK loads only when exporting
  const tracing = await createTracing(config, {
    lastAttemptEnd: async (jobId) => (await store.listAttempts(jobId)).at(-1)?.finished_at ?? null,
    onError: (err) => events.emit({ type: 'store.error', op: 'trace', error: err.message }),
  });
  const { engine, dispatcher } = createEngine(config, { store, clock: systemClock, events, owner, secrets, tracing });

  /** What the main thread reads without asking: the room for jobs created held, and the stats. */
  publish = () => {
    const s = engine.stats();
    Atomics.store(slots, SLOT.room, engine.isRunning ? s.capacity - s.queued : 0);
    Atomics.store(slots, SLOT.queued, s.queued);
    Atomics.store(slots, SLOT.parked, s.parked);
    Atomics.store(slots, SLOT.ahead, s.ahead);
    Atomics.store(slots, SLOT.inFlight, s.inFlight);
  };
  // counts also move without events (a held job coming due, a claim): kept fresh for /metrics
  publishHeap();
  const publisher = setInterval(() => {
    publish();
    publishHeap();
  }, 100);
  publisher.unref();

  const ops = {
    start: async () => {
      await engine.start();
      publish();
    },
    drain: (timeoutMs: unknown) => engine.drain(timeoutMs as number),
    destinations: (tenantId: unknown) => engine.destinations(tenantId as string | undefined),
    reset: (key: unknown) => engine.resetDestination(key as string),
    close: async () => {
      clearInterval(publisher);
      await dispatcher.close();
      await tracing.shutdown().catch(() => undefined);
      await store.close();
    },
  };

  port.on('message', (m: ToEngine) => {
    switch (m.t) {
      case 'adopt': {
        // the main thread granted these slots against the published room; reserve them here
        // (all of them: they are committed under this engine's lease), then take the jobs
        engine.reserve(m.jobs.length);
        for (const job of m.jobs) engine.adopt(job);
        publish();
        Atomics.sub(slots, SLOT.inTransit, m.jobs.length);
        break;
      }
      case 'due':
        engine.notifyDue(m.at);
        break;
      case 'forget':
        engine.forget(m.id);
        break;
      case 'call':
        void (async () => {
          try {
            const result = await ops[m.op](m.arg);
            flush(); // events first: what the call did shows before its answer
            send({ t: 'reply', id: m.id, result });
          } catch (err) {
            send({ t: 'reply', id: m.id, error: (err as Error).message });
          }
        })();
        break;
    }
  });
  send({ t: 'reply', id: 0 });
} catch (err) {
  send({ t: 'reply', id: 0, error: (err as Error).message });
}
