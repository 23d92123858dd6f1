/*
 * The engine on a worker thread (ENGINE_THREAD, on by default; see DESIGN "Two threads"), and its stand-in on the main thread.
 *
 * One event loop doing HTTP intake, validation, SQLite writes, outgoing HTTP, signing and logging
 * sat at 100% of one core while the other was half idle. Here the main thread keeps the API and
 * commits the intake; the engine thread (worker.ts) claims, delivers (its own undici Agent),
 * signs and writes the results on its own connection to the same database (SQLite in WAL mode
 * lets the two connections write in turn; PostgreSQL gets a second pool).
 *
 * What crosses, and what it costs (protocol.ts): one message per group commit or per few milliseconds,
 * not one per job. A group commit's jobs created already leased to this engine go over as one array; the
 * engine's events (for metrics and logs, which stay here) come back as one array; the room for
 * jobs created held, and the engine's stats, are read from shared memory without a message.
 *
 * States: starting ──(worker built, engine started)──▶ running ──(drain)──▶ drained ──(close)──▶ closed;
 * a worker that dies is not running any more: readiness fails and jobs wait in the store.
 */

import type { Worker } from 'node:worker_threads';
import { signingSecrets, type Config } from '../../config.js';
import type { EventBus } from '../../observability/events.js';
import type { WriteLock } from '../../store/sqlite/write-lock.js';
import type { ClaimedJob } from '../../store/store.js';
import { spawnWorker, withSemiSpace } from '../../spawn-worker.js';
import type { DestinationState } from '../destinations.js';
import type { EngineStats } from '../engine.js';
import { HOLD_AHEAD_MS, type EngineHandle } from '../handle.js';
import { SLOT, SLOTS, type CallOp, type FromEngine, type ToEngine, type WorkerInit } from './protocol.js';

/**
 * The engine isolate's semi-space, in MB. V8 takes the young generation's size from the process's
 * `--max-semi-space-size` (NODE_FLAGS) for every isolate, and that flag overrides a Worker's
 * resourceLimits, so it is set around the worker's creation (withSemiSpace). 2 MB: a young
 * generation of 4 MB instead of 8, for about 0.4 s more GC over 20,000 deliveries (1 MB saved
 * 2 MB more for twice the GC of 4 MB; measured in DESIGN, "Two threads"). NODE_FLAGS now give the
 * main isolate 2 MB as well; this keeps the engine's size where node runs without them (npm run
 * dev, the tests).
 */
export const ENGINE_SEMI_SPACE_MB = 2;

export class EngineThread implements EngineHandle {
  readonly holdAheadMs = HOLD_AHEAD_MS;
  readonly leaseMs: number;
  private readonly slots: Int32Array;
  private readonly worker: Worker;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private running = false;
  private closed = false;
  private adopting: ClaimedJob[] = [];
  private dueAt = Infinity;
  private flushSoon = false;
  /** True while the engine thread's events are emitted here: they were logged there already. */
  relaying = false;

  private constructor(
    private readonly config: Config,
    readonly owner: string,
    private readonly events: EventBus,
    private readonly writeLog: (lines: string) => void,
    writeLock: WriteLock,
  ) {
    this.leaseMs = config.LEASE_MS;
    const shared = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT);
    this.slots = new Int32Array(shared);
    const init: WorkerInit = { config, secrets: signingSecrets(config), owner, shared, writeLock: writeLock.buffer };
    this.worker = withSemiSpace(ENGINE_SEMI_SPACE_MB, () => spawnWorker(import.meta.url, 'worker', init));
    this.worker.on('message', (m: FromEngine) => this.received(m));
    this.worker.on('error', (err) => this.failed(err));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.failed(new Error(`engine thread exited with code ${code}`));
    });
  }

  /** Starts the thread and waits until its store is open (the engine starts with start()). */
  /**
   * `events`: where the engine's events are emitted again (for the metrics); its log lines come
   * already formatted, to `writeLog`, so the main thread's logger skips events emitted while
   * `relaying`.
   */
  static async open(o: { config: Config; owner: string; events: EventBus; writeLog: (lines: string) => void; writeLock: WriteLock }): Promise<EngineThread> {
    const t = new EngineThread(o.config, o.owner, o.events, o.writeLog, o.writeLock);
    try {
      await t.pending(0);
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  }

  get isRunning(): boolean {
    return this.running;
  }

  stats(): EngineStats {
    const s = this.slots;
    return {
      queued: Atomics.load(s, SLOT.queued),
      parked: Atomics.load(s, SLOT.parked),
      ahead: Atomics.load(s, SLOT.ahead),
      inFlight: Atomics.load(s, SLOT.inFlight),
      capacity: this.config.QUEUE_CAPACITY,
      concurrency: this.config.WORKER_CONCURRENCY,
      heap: {
        committed: Atomics.load(s, SLOT.heapKib) * 1024,
        used: Atomics.load(s, SLOT.heapUsedKib) * 1024,
        young: Atomics.load(s, SLOT.youngKib) * 1024,
      },
    };
  }

  async start(): Promise<void> {
    await this.call('start');
    this.running = true;
  }

  // ── claim at insert (Intake), against the room the engine published ──

  reserve(n: number): number {
    if (!this.running) return 0;
    const s = this.slots;
    const granted = Math.max(0, Math.min(n, Atomics.load(s, SLOT.room) - Atomics.load(s, SLOT.inTransit)));
    if (granted > 0) Atomics.add(s, SLOT.inTransit, granted);
    return granted;
  }

  unreserve(n: number): void {
    Atomics.sub(this.slots, SLOT.inTransit, n);
  }

  adopt(job: ClaimedJob): void {
    this.adopting.push(job);
    this.soon();
  }

  notifyDue(at: number): void {
    if (!this.running) return;
    // the earliest is enough: after each claim the engine asks the store for the next due time
    if (at < this.dueAt) this.dueAt = at;
    this.soon();
  }

  forget(id: string): void {
    this.post({ t: 'forget', id });
  }

  destinations(tenantId?: string): Promise<DestinationState[]> {
    return this.call('destinations', tenantId) as Promise<DestinationState[]>;
  }

  resetDestination(key: string): Promise<DestinationState | null> {
    return this.call('reset', key) as Promise<DestinationState | null>;
  }

  async drain(timeoutMs: number): Promise<{ released: number; abandoned: number }> {
    if (this.closed) return { released: 0, abandoned: 0 };
    this.running = false;
    this.flush(); // jobs already committed under this engine's lease go over first, then are given back
    return (await this.call('drain', timeoutMs)) as { released: number; abandoned: number };
  }

  /** Closes the thread's store and connections, then the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call('close');
    } catch {
      // a thread that failed has nothing left to close
    }
    this.closed = true;
    await this.worker.terminate();
  }

  // ── messages ──

  private soon(): void {
    if (this.flushSoon) return;
    this.flushSoon = true;
    // after the intake's loop over its commit's outcomes: the whole commit in one message
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushSoon = false;
    if (this.adopting.length > 0) {
      this.post({ t: 'adopt', jobs: this.adopting });
      this.adopting = [];
    }
    if (this.dueAt !== Infinity) {
      this.post({ t: 'due', at: this.dueAt });
      this.dueAt = Infinity;
    }
  }

  private post(m: ToEngine): void {
    if (!this.closed) this.worker.postMessage(m);
  }

  private call(op: CallOp, arg?: unknown): Promise<unknown> {
    const id = ++this.seq;
    const p = this.pending(id);
    this.post({ t: 'call', id, op, arg });
    return p;
  }

  private pending(id: number): Promise<unknown> {
    return new Promise((resolve, reject) => this.calls.set(id, { resolve, reject }));
  }

  private received(m: FromEngine): void {
    if (m.t === 'events') {
      this.relaying = true;
      try {
        for (const e of m.events) this.events.emit(e);
      } finally {
        this.relaying = false;
      }
      if (m.log !== '') this.writeLog(m.log);
      return;
    }
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (m.error !== undefined) c.reject(new Error(m.error));
    else c.resolve(m.result);
  }

  private failed(err: Error): void {
    this.running = false;
    this.closed = true;
    this.events.emit({ type: 'store.error', op: 'engine', error: `engine thread failed: ${err.message}` });
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }
}
