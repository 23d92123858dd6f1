/*
 * The dispatch engine: the loop fill → take → start → finish.
 *
 *   fill    claim due jobs from the store (or adopt jobs created already held by this engine, see
 *           Intake) into the local queue (local-queue.ts: held states, capacity, counts), which hands
 *           each due job to its destination lane (lanes.ts)
 *   take    the lanes give the next job that may start: tenants served in turn, then destinations,
 *           each lane pacing its own jobs by in-flight slots, rate-limit tokens and its circuit
 *   start   at most `concurrency` attempts in flight (WORKER_CONCURRENCY)
 *   finish  the result is written (write-batcher.ts), the lane and its circuit told, and the loop
 *           takes again
 *
 * A job waiting in a lane holds no worker and spends no attempt; one that would wait there longer
 * than maxParkMs is given back to the store, due when its turn should come (releaser.ts). Leases
 * and `running` marks are kept in bulk (lease-keeper.ts). Every timer goes through the Clock.
 *
 * Memory stays bounded: at most `capacity` jobs wait in memory; the rest wait in the store and are
 * claimed as room frees.
 */

import { HOLD_AHEAD_MS } from './handle.js';
import { engineOwner } from './owner.js';
import type { Clock, Timer } from '../clock.js';
import type { DeliveryResult } from '../domain/attempt.js';
import type { EventBus } from '../observability/events.js';
import type { AttemptSpan, Tracing } from '../observability/tracing.js';
import { traceIdOf } from '../domain/trace-context.js';
import type { ClaimedJob, Store } from '../store/store.js';
import type { Deliver } from './record.js';
import type { CircuitPolicy, CircuitState } from './circuit.js';
import type { Held } from './held.js';
import type { Lane } from './lane.js';
import { destinationState, type DestinationState } from './destinations.js';
import { deliverAttempt, recordAttempt, type Recording } from './record.js';
import { Lanes } from './lanes.js';
import { LaneLeases } from './lane-leases.js';
import { LeaseKeeper } from './lease-keeper.js';
import { LocalQueue } from './local-queue.js';
import { Releaser } from './releaser.js';
import { Scheduler } from './scheduler.js';
import { WriteBatcher } from './write-batcher.js';

export type { Deliver } from './record.js';

export const DEFAULT_CIRCUIT: CircuitPolicy = { failureThreshold: 5, cooldownMs: 5000, cooldownMaxMs: 300_000 };

export interface EngineOptions {
  store: Store;
  clock: Clock;
  events: EventBus;
  deliver: Deliver;
  /** Jobs waiting in memory at most (QUEUE_CAPACITY). */
  capacity: number;
  /** Attempts in flight at most (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Attempts in flight per (tenant, destination origin) unless a job says otherwise (DESTINATION_MAX_IN_FLIGHT). */
  destinationMaxInFlight?: number;
  /** Attempts in flight per tenant, all its destinations together (TENANT_MAX_IN_FLIGHT). */
  tenantMaxInFlight?: number;
  circuit?: CircuitPolicy;
  leaseMs: number;
  pollIntervalMs: number;
  retryAfterMaxMs: number;
  /** Free every held job at start: right for an embedded database only this process uses. */
  recoverAllOnStart: boolean;
  owner?: string;
  random?: () => number;
  claimBatch?: number;
  /** A job that would wait longer than this in its lane goes back to the store meanwhile. */
  maxParkMs?: number;
  /** Continues each traced job's trace on its attempts (observability/tracing.ts). */
  tracing?: Tracing | null;
}

export interface EngineStats {
  /** Jobs waiting in memory: in lanes and held ahead of their time (the memory queue's depth). */
  queued: number;
  /** Jobs waiting in their destination lanes (for a worker, a slot, a token or a circuit). */
  parked: number;
  /** Jobs created here and held in memory until their run_at (at most HOLD_AHEAD_MS ahead). */
  ahead: number;
  inFlight: number;
  capacity: number;
  concurrency: number;
  /** Destinations this instance holds under a lease (PostgreSQL); absent where every destination is its own. */
  destinationsHeld?: number;
  /**
   * The engine thread's V8 heap, in bytes: committed, used, and the young generation's committed
   * part. Absent when the engine runs on the main thread, whose heap nodejs_heap_* report.
   */
  heap?: { committed: number; used: number; young: number };
}

export class Engine {
  readonly owner: string;
  private readonly o: Required<Omit<EngineOptions, 'owner'>>;
  private readonly queue: LocalQueue;
  private readonly lanes: Lanes;
  private readonly scheduler: Scheduler;
  private readonly writer: WriteBatcher;
  private readonly keeper: LeaseKeeper;
  /** Destinations held under a lease (Store.laneLeases), else null: every destination is ours. */
  private readonly leases: LaneLeases | null;
  private readonly releaser: Releaser;
  private readonly recording: Recording;
  private readonly tracing: Tracing | null;
  private pumpScheduled = false;
  private filling = false;
  private refill = false;
  private fillSoon = false;
  private backlog = false;
  private pumping = false;
  private started = false;
  private draining = false;
  private pollTimer: Timer | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: EngineOptions) {
    this.owner = opts.owner ?? engineOwner();
    this.tracing = opts.tracing ?? null;
    this.o = {
      ...opts,
      random: opts.random ?? Math.random,
      claimBatch: opts.claimBatch ?? 1000,
      maxParkMs: opts.maxParkMs ?? 2000,
      destinationMaxInFlight: opts.destinationMaxInFlight ?? opts.concurrency,
      tenantMaxInFlight: opts.tenantMaxInFlight ?? opts.concurrency,
      circuit: opts.circuit ?? DEFAULT_CIRCUIT,
    } as Required<Omit<EngineOptions, 'owner'>>;
    this.scheduler = new Scheduler(opts.clock, () => this.requestFill());
    this.writer = new WriteBatcher(opts.store, this.owner, opts.clock, opts.events);
    this.queue = new LocalQueue(opts.clock, opts.capacity, (h) => this.join(h));
    this.lanes = new Lanes({
      clock: opts.clock,
      defaultMaxInFlight: this.o.destinationMaxInFlight,
      tenantMaxInFlight: this.o.tenantMaxInFlight,
      circuit: this.o.circuit,
      maxParkMs: this.o.maxParkMs,
      onReady: () => this.pump(),
      onCircuit: (lane, from, to, released) => this.circuitChanged(lane, from, to, released),
    });
    this.leases = opts.store.laneLeases
      ? new LaneLeases({
          store: opts.store,
          clock: opts.clock,
          events: opts.events,
          owner: this.owner,
          leaseMs: opts.leaseMs,
          lanes: this.lanes,
          onLost: (_key, waiting) => this.giveBack(waiting, opts.clock.now()),
        })
      : null;
    const leases = this.leases;
    this.keeper = new LeaseKeeper({
      store: opts.store,
      clock: opts.clock,
      events: opts.events,
      writer: this.writer,
      owner: this.owner,
      leaseMs: opts.leaseMs,
      heldCount: () => this.queue.size,
      renewAlso: leases ? () => leases.sync() : undefined,
    });
    this.recording = {
      clock: opts.clock,
      events: opts.events,
      writer: this.writer,
      owner: this.owner,
      random: this.o.random,
      retryAfterMaxMs: opts.retryAfterMaxMs,
    };
    this.releaser = new Releaser(opts.store, this.owner, opts.clock, opts.events, (at) => this.scheduler.wakeAt(at));
  }

  get leaseMs(): number {
    return this.o.leaseMs;
  }

  get holdAheadMs(): number {
    return HOLD_AHEAD_MS;
  }

  get isRunning(): boolean {
    return this.started && !this.draining;
  }

  stats(): EngineStats {
    const q = this.queue.stats();
    return {
      queued: q.queued,
      parked: q.queued - q.ahead,
      ahead: q.ahead,
      inFlight: q.inFlight,
      capacity: this.o.capacity,
      concurrency: this.o.concurrency,
      ...(this.leases ? { destinationsHeld: this.leases.size } : {}),
    };
  }

  async start(): Promise<void> {
    const now = this.o.clock.now();
    const recovered = await this.o.store.recoverLeases(now, { all: this.o.recoverAllOnStart });
    if (recovered > 0) this.o.events.emit({ type: 'leases.recovered', count: recovered });
    await this.o.store.promoteDue(now);
    this.started = true;
    this.armPoll();
    this.keeper.start();
    this.requestFill();
  }

  /** Tells the engine a job became due at `at` (created, retried): it runs then, not at the next poll. */
  notifyDue(at: number): void {
    if (!this.isRunning) return;
    if (at <= this.o.clock.now()) this.requestFill();
    else this.scheduler.wakeAt(at);
  }

  // ── claim at insert (see Intake) ──

  /**
   * Whether a job for this destination may be created already held by this engine: always, unless
   * destinations are held under a lease and another instance (or nobody yet) holds this one.
   */
  mayHold(tenantId: string, url: string): boolean {
    return this.leases === null || this.leases.use(this.lanes.keyOf(tenantId, url));
  }

  /** Grants up to n memory-queue slots to jobs about to be created already held by this engine. */
  reserve(n: number): number {
    return this.isRunning ? this.queue.reserve(n) : 0;
  }

  unreserve(n: number): void {
    this.queue.unreserve(n);
  }

  /** Takes a job that was created under this engine's lease: into its lane when due, else held until its run_at. */
  adopt(job: ClaimedJob): void {
    this.queue.unreserve(1);
    if (!this.isRunning) return; // still leased to us: drain() or the next start gives it back
    this.queue.add(job);
  }

  /** A job was cancelled: drop it from memory; an attempt in flight finishes and is its last. */
  forget(id: string): void {
    const h = this.queue.forget(id);
    if (h) this.lanes.dropped(h);
  }

  // ── destinations ──

  destinations(tenantId?: string): DestinationState[] {
    const out: DestinationState[] = [];
    for (const lane of this.lanes.all()) {
      if (tenantId === undefined || lane.tenantId === tenantId) out.push(destinationState(lane));
    }
    return out;
  }

  destination(key: string): DestinationState | null {
    const lane = this.lanes.get(key);
    return lane ? destinationState(lane) : null;
  }

  /** Closes a destination's circuit by hand. Returns its state after, or null when unknown. */
  resetDestination(key: string): DestinationState | null {
    if (!this.lanes.reset(key)) return null;
    this.requestFill();
    return this.destination(key);
  }

  /**
   * Stops claiming, gives back every job waiting in memory, lets attempts in flight finish for up to
   * timeoutMs, then gives those back too (they will be delivered again), and flushes every write.
   */
  async drain(timeoutMs: number): Promise<{ released: number; abandoned: number }> {
    if (!this.started) return { released: 0, abandoned: 0 };
    this.draining = true;
    this.scheduler.stop();
    this.pollTimer?.cancel();
    this.keeper.stop();
    const waitingIds = this.queue.stop();
    this.leases?.freeze();
    this.lanes.clear();
    await this.releaser.flush();
    if (waitingIds.length) await this.o.store.release(waitingIds, this.owner, this.o.clock.now());

    if (this.queue.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.o.clock.setTimer(timeoutMs, resolve);
        this.idleWaiters.push(() => {
          timer.cancel();
          resolve();
        });
      });
    }
    const abandonedIds = this.queue.abandonInFlight();
    await this.writer.flush();
    if (abandonedIds.length) await this.o.store.release(abandonedIds, this.owner, this.o.clock.now());
    // after the last attempt: the next holder of each destination starts where this one stopped
    await this.leases?.giveUpAll().catch((err: Error) => this.o.events.emit({ type: 'store.error', op: 'lanes', error: err.message }));
    return { released: waitingIds.length, abandoned: abandonedIds.length };
  }

  // ── fill ──────────────────────────────────────────────────────────────────────────────────────

  private requestFill(): void {
    if (this.fillSoon) return;
    this.fillSoon = true;
    setImmediate(() => {
      this.fillSoon = false;
      void this.fill();
    });
  }

  private async fill(): Promise<void> {
    if (!this.isRunning) return;
    if (this.filling) {
      this.refill = true;
      return;
    }
    const room = this.queue.room;
    if (room <= 0) {
      this.backlog = true;
      return;
    }
    this.filling = true;
    this.refill = false;
    const want = Math.min(room, this.o.claimBatch);
    const now = this.o.clock.now();
    try {
      const claim = () => this.o.store.claimDue(this.owner, now, this.o.leaseMs, want);
      const claimed = this.leases ? await this.leases.claim(claim, now) : await claim();
      if (!this.isRunning) {
        if (claimed.length) await this.o.store.release(claimed.map((j) => j.id), this.owner, now);
        return;
      }
      for (const job of claimed) this.queue.add(job);
      this.backlog = claimed.length === want;
      if (!this.backlog) {
        const next = await this.o.store.nextDueAt(this.owner, now);
        if (next !== null) this.scheduler.wakeAt(next);
      }
    } catch (err) {
      this.o.events.emit({ type: 'store.error', op: 'claim', error: (err as Error).message });
      this.scheduler.wakeAt(this.o.clock.now() + 1000);
    } finally {
      this.filling = false;
    }
    this.pump();
    if (this.refill || (this.backlog && this.queue.room > 0)) this.requestFill();
  }

  /** A held job became due: it joins its lane, or goes back to the store when its wait would be long. */
  private join(h: Held): void {
    if (this.leases && !this.leases.holds(this.lanes.keyOf(h.job.tenant_id, h.job.destination.url))) {
      // another instance delivers this destination (or nobody holds it yet): its claim takes the job
      this.giveBack([h], this.o.clock.now());
      return;
    }
    const r = this.lanes.add(h);
    const limited = h.job.rate_limit !== null;
    if (r.kind === 'release') {
      this.queue.remove(h);
      this.releaser.later(h.job.id, r.dueAt);
      if (limited) this.o.events.emit({ type: 'ratelimit.wait', tenant_id: h.job.tenant_id, wait_ms: r.waitMs, released: true });
      return;
    }
    if (limited && r.waitMs > 0) this.o.events.emit({ type: 'ratelimit.wait', tenant_id: h.job.tenant_id, wait_ms: r.waitMs, released: false });
    this.pumpSoon();
  }

  /** Jobs waiting in memory go back to the store, due at `at`. */
  private giveBack(jobs: Held[], at: number): void {
    for (const h of jobs) {
      this.queue.remove(h);
      this.releaser.later(h.job.id, at);
    }
  }

  private circuitChanged(lane: Lane, from: CircuitState, to: CircuitState, released: Held[]): void {
    this.giveBack(released, lane.circuit.openUntil);
    this.o.events.emit({
      type: 'circuit.changed',
      tenant_id: lane.tenantId,
      origin: lane.origin,
      from,
      to,
      failures: lane.circuit.failures,
      probe_at: to === 'open' ? lane.circuit.openUntil : null,
      last_error: lane.lastError,
    });
    if (to === 'closed') this.requestFill();
    // the destination's next holder must see the circuit as it is now, not as of the last renewal
    void this.leases?.sync();
  }

  // ── take, start, finish ───────────────────────────────────────────────────────────────────────

  private pump(): void {
    if (this.pumping || this.draining) return;
    this.pumping = true;
    try {
      while (this.queue.inFlight < this.o.concurrency) {
        const h = this.lanes.take();
        if (!h) break;
        this.startAttempt(h);
      }
    } finally {
      this.pumping = false;
    }
    if (this.backlog && this.queue.queuedCount <= this.o.capacity / 2) this.requestFill();
  }

  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private startAttempt(h: Held): void {
    const job = h.job;
    this.queue.started(h);
    const attempt = job.attempts + 1;
    const startedAt = this.o.clock.now();
    const dueAt = job.status === 'retrying' && job.next_attempt_at !== null ? job.next_attempt_at : job.run_at;
    h.startedAt = startedAt;
    this.keeper.attemptStarted(h);
    this.o.events.emit({
      type: 'attempt.started',
      job_id: job.id,
      tenant_id: job.tenant_id,
      attempt,
      lateness_ms: Math.max(0, startedAt - dueAt),
      trace_id: traceIdOf(job.traceparent),
    });
    // a job without a trace pays this one check
    const span = job.traceparent && this.tracing ? this.tracing.startAttempt(job, job.traceparent, attempt, startedAt) : null;
    void deliverAttempt(this.o.deliver, job, startedAt, span).then(({ result, durationMs }) => this.finish(h, attempt, startedAt, durationMs, result, span));
  }

  private finish(h: Held, attempt: number, startedAt: number, durationMs: number, result: DeliveryResult, span: AttemptSpan | null): void {
    span?.end(result, startedAt + durationMs);
    this.queue.finished(h);
    this.keeper.attemptFinished(h);
    this.lanes.finished(h, result, durationMs);
    if (!h.abandoned) {
      recordAttempt(this.recording, { h, attempt, startedAt, durationMs, result }, (at) => this.notifyDue(at));
    }
    if (this.queue.inFlight === 0 && this.idleWaiters.length) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    this.pump();
  }

  // ── periodic work ─────────────────────────────────────────────────────────────────────────────

  private armPoll(): void {
    this.pollTimer = this.o.clock.setTimer(this.o.pollIntervalMs, () => {
      void this.poll().finally(() => {
        if (this.isRunning) this.armPoll();
      });
    });
  }

  /** Catches work written by other processes and frees jobs whose dispatcher died. */
  private async poll(): Promise<void> {
    if (!this.isRunning) return;
    const now = this.o.clock.now();
    try {
      const recovered = await this.o.store.recoverLeases(now);
      if (recovered > 0) this.o.events.emit({ type: 'leases.recovered', count: recovered });
      await this.o.store.promoteDue(now);
    } catch (err) {
      this.o.events.emit({ type: 'store.error', op: 'poll', error: (err as Error).message });
    }
    this.requestFill();
  }
}
