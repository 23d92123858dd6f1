/*
 * The dispatch engine: claims due jobs from the store (or adopts jobs created already held by it,
 * see Intake) into a bounded memory queue, paces them per destination, runs at most `concurrency`
 * attempts at once, and writes each result back.
 *
 * A claimed job's life in memory (its store status stays waiting until an attempt has been in flight
 * for MARK_AFTER_MS; then it is written as running):
 *
 *   created here, due within HOLD_AHEAD_MS ──▶ held ahead (heap by run_at, one timer) ──(run_at)──┐
 *                                                                                                  ▼
 *   claimed ──▶ queued (FIFO) ──(no rate limit, or a token is free)──▶ in flight ──▶ result written
 *                   │                                                     ▲
 *                   └──(no token yet)──▶ parked on its (tenant, origin) ──┘ (when its timer frees a token)
 *                                             └──(would wait longer than maxParkMs)──▶ released to the store,
 *                                                  due when its turn comes (no attempt spent)
 *   ahead | queued | parked ──(cancelled)──▶ dropped  in flight ──(cancelled)──▶ finishes, no further attempt
 *   ahead | queued | parked ──(drain)──▶ released     in flight ──(drain timeout)──▶ released, result ignored
 *   (a job released keeps its due time: one held ahead is claimed from the store when its time comes)
 *
 * Memory stays bounded: at most `capacity` jobs wait in memory (held ahead, queued or parked); the
 * rest wait in the store and are claimed as room frees. A parked job holds no worker, so a slow or throttled
 * destination never delays the others.
 */

import { hostname } from 'node:os';
import { uuidv7 } from 'uuidv7';
import type { Clock, Timer } from '../clock.js';
import type { DeliveryResult } from '../domain/attempt.js';
import { nextStep } from '../domain/retry-policy.js';
import { boundedWait, MIN_RPS } from '../domain/time.js';
import type { JobStatus } from '../domain/job.js';
import type { EventBus } from '../observability/events.js';
import type { ClaimedJob, Store } from '../store/store.js';
import type { DeliveryRequest } from '../delivery/dispatcher.js';
import { Fifo } from './fifo.js';
import { MinHeap } from './min-heap.js';
import { RateLimiter, rateLimitKey } from './rate-limiter.js';
import { Scheduler } from './scheduler.js';
import { WriteBatcher } from './write-batcher.js';

export type Deliver = (req: DeliveryRequest) => Promise<DeliveryResult>;

export interface EngineOptions {
  store: Store;
  clock: Clock;
  events: EventBus;
  deliver: Deliver;
  /** Jobs waiting in memory at most (QUEUE_CAPACITY). */
  capacity: number;
  /** Attempts in flight at most (WORKER_CONCURRENCY). */
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  retryAfterMaxMs: number;
  /** Free every held job at start: right for an embedded database only this process uses. */
  recoverAllOnStart: boolean;
  owner?: string;
  random?: () => number;
  claimBatch?: number;
  /** A job that would wait longer than this for a rate-limit token goes back to the store meanwhile. */
  maxParkMs?: number;
}

interface Held {
  job: ClaimedJob;
  state: 'ahead' | 'queued' | 'parked' | 'inflight';
  cancelled: boolean;
  abandoned: boolean;
  startedAt: number;
}

/**
 * An attempt is written as `running` only once it has been in flight this long: most deliveries
 * finish sooner, and skipping their mark saves a write per job. Slow ones show as running.
 */
const MARK_AFTER_MS = 100;

/**
 * A job created by this process and due within this long is written already held by this engine
 * (see Intake) and waits in memory for its time, so it runs then without a claim statement and
 * without a scheduler round trip through the store. Well inside any lease (renewed in bulk anyway).
 */
export const HOLD_AHEAD_MS = 2000;

interface Park {
  fifo: Fifo<Held>;
  timer: Timer | null;
}

export interface EngineStats {
  /** Jobs waiting in memory: queued, parked and held ahead of their time (the memory queue's depth). */
  queued: number;
  parked: number;
  /** Jobs created here and held in memory until their run_at (at most HOLD_AHEAD_MS ahead). */
  ahead: number;
  inFlight: number;
  capacity: number;
  concurrency: number;
}

export class Engine {
  readonly owner: string;
  private readonly o: Required<Omit<EngineOptions, 'owner'>>;
  private readonly held = new Map<string, Held>();
  private readonly queue = new Fifo<Held>(1024);
  /** Jobs held ahead of their run_at, earliest first, and the one timer set for the earliest. */
  private readonly ahead = new MinHeap<Held>((h) => h.job.run_at);
  private aheadTimer: Timer | null = null;
  private aheadAt = Infinity;
  private aheadCount = 0;
  private readonly parks = new Map<string, Park>();
  private readonly readyKeys = new Fifo<string>();
  private readonly limiter = new RateLimiter();
  private readonly scheduler: Scheduler;
  private readonly writer: WriteBatcher;
  private waiting = 0;
  private reserved = 0;
  private pumpScheduled = false;
  /** Attempts in flight not yet marked running in the store (marked once they outlast MARK_AFTER_MS). */
  private readonly unmarked = new Set<Held>();
  private markTimer: Timer | null = null;
  private parkedCount = 0;
  private inFlight = 0;
  private filling = false;
  private refill = false;
  private fillSoon = false;
  private backlog = false;
  private pumping = false;
  private started = false;
  private draining = false;
  private pollTimer: Timer | null = null;
  private renewTimer: Timer | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: EngineOptions) {
    this.owner = opts.owner ?? `${hostname()}:${process.pid}:${uuidv7().slice(-12)}`;
    this.o = {
      ...opts,
      random: opts.random ?? Math.random,
      claimBatch: opts.claimBatch ?? 1000,
      maxParkMs: opts.maxParkMs ?? 2000,
    } as Required<Omit<EngineOptions, 'owner'>>;
    this.scheduler = new Scheduler(opts.clock, () => this.requestFill());
    this.writer = new WriteBatcher(opts.store, this.owner, opts.clock, opts.events);
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
    return {
      queued: this.waiting,
      parked: this.parkedCount,
      ahead: this.aheadCount,
      inFlight: this.inFlight,
      capacity: this.o.capacity,
      concurrency: this.o.concurrency,
    };
  }

  async start(): Promise<void> {
    const now = this.o.clock.now();
    const recovered = await this.o.store.recoverLeases(now, { all: this.o.recoverAllOnStart });
    if (recovered > 0) this.o.events.emit({ type: 'leases.recovered', count: recovered });
    await this.o.store.promoteDue(now);
    this.started = true;
    this.armPoll();
    this.armRenew();
    this.requestFill();
  }

  /** Tells the engine a job became due at `at` (created, retried): it runs then, not at the next poll. */
  notifyDue(at: number): void {
    if (!this.isRunning) return;
    if (at <= this.o.clock.now()) this.requestFill();
    else this.scheduler.wakeAt(at);
  }

  // ── claim at insert (see Intake) ──

  /** Grants up to n memory-queue slots to jobs about to be created already held by this engine. */
  reserve(n: number): number {
    if (!this.isRunning) return 0;
    const granted = Math.max(0, Math.min(n, this.o.capacity - this.waiting - this.reserved));
    this.reserved += granted;
    return granted;
  }

  unreserve(n: number): void {
    this.reserved = Math.max(0, this.reserved - n);
  }

  /**
   * Takes a job that was created under this engine's lease: into the memory queue when it is due,
   * else held until its run_at.
   */
  adopt(job: ClaimedJob): void {
    this.reserved = Math.max(0, this.reserved - 1);
    if (!this.isRunning) return; // still leased to us: drain() or the next start gives it back
    if (job.run_at > this.o.clock.now()) {
      this.holdAhead(job);
      return;
    }
    this.enqueue(job);
    this.pumpSoon();
  }

  private holdAhead(job: ClaimedJob): void {
    const h: Held = { job, state: 'ahead', cancelled: false, abandoned: false, startedAt: 0 };
    this.held.set(job.id, h);
    this.waiting++;
    this.aheadCount++;
    this.ahead.push(h);
    this.armAhead();
  }

  private armAhead(): void {
    const first = this.ahead.peek();
    if (!first || this.draining || first.job.run_at >= this.aheadAt) return;
    this.aheadTimer?.cancel();
    this.aheadAt = first.job.run_at;
    this.aheadTimer = this.o.clock.setTimer(first.job.run_at - this.o.clock.now(), () => {
      this.aheadTimer = null;
      this.aheadAt = Infinity;
      this.queueDueAhead();
    });
  }

  /** Moves every job held ahead whose time has come into the memory queue, in run_at order. */
  private queueDueAhead(): void {
    if (this.draining) return;
    const now = this.o.clock.now();
    let moved = false;
    for (let h = this.ahead.peek(); h && h.job.run_at <= now; h = this.ahead.peek()) {
      this.ahead.pop();
      if (this.held.get(h.job.id) !== h || h.state !== 'ahead') continue; // cancelled meanwhile
      h.state = 'queued';
      this.aheadCount--;
      this.queue.push(h);
      moved = true;
    }
    if (moved) this.pump();
    this.armAhead();
  }

  /** A job was cancelled: drop it from memory; an attempt in flight finishes and is its last. */
  forget(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    if (h.state === 'inflight') {
      h.cancelled = true;
      return;
    }
    this.held.delete(id);
    this.leaveWaiting(h);
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
    this.renewTimer?.cancel();
    this.markTimer?.cancel();
    this.markTimer = null;
    this.aheadTimer?.cancel();
    this.aheadTimer = null;
    this.ahead.clear();
    this.aheadCount = 0;
    for (const p of this.parks.values()) p.timer?.cancel();
    const now = this.o.clock.now();
    const waitingIds: string[] = [];
    for (const [id, h] of this.held) {
      if (h.state !== 'inflight') {
        waitingIds.push(id);
        this.held.delete(id);
      }
    }
    this.waiting = 0;
    this.parkedCount = 0;
    this.parks.clear();
    if (waitingIds.length) await this.o.store.release(waitingIds, this.owner, now);

    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.o.clock.setTimer(timeoutMs, resolve);
        this.idleWaiters.push(() => {
          timer.cancel();
          resolve();
        });
      });
    }
    const abandonedIds: string[] = [];
    for (const [id, h] of this.held) {
      if (h.state === 'inflight') {
        h.abandoned = true;
        abandonedIds.push(id);
      }
    }
    this.held.clear();
    await this.writer.flush();
    if (abandonedIds.length) await this.o.store.release(abandonedIds, this.owner, this.o.clock.now());
    return { released: waitingIds.length, abandoned: abandonedIds.length };
  }

  // ── claiming ──────────────────────────────────────────────────────────────────────────────────

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
    const room = this.o.capacity - this.waiting - this.reserved;
    if (room <= 0) {
      this.backlog = true;
      return;
    }
    this.filling = true;
    this.refill = false;
    const want = Math.min(room, this.o.claimBatch);
    const now = this.o.clock.now();
    try {
      const claimed = await this.o.store.claimDue(this.owner, now, this.o.leaseMs, want);
      if (!this.isRunning) {
        if (claimed.length) await this.o.store.release(claimed.map((j) => j.id), this.owner, now);
        return;
      }
      for (const job of claimed) this.enqueue(job);
      this.backlog = claimed.length === want;
      if (!this.backlog) {
        const next = await this.o.store.nextDueAt();
        if (next !== null) this.scheduler.wakeAt(next);
      }
    } catch (err) {
      this.o.events.emit({ type: 'store.error', op: 'claim', error: (err as Error).message });
      this.scheduler.wakeAt(this.o.clock.now() + 1000);
    } finally {
      this.filling = false;
    }
    this.pump();
    if (this.refill || (this.backlog && this.waiting < this.o.capacity)) this.requestFill();
  }

  // ── running ───────────────────────────────────────────────────────────────────────────────────

  private pump(): void {
    if (this.pumping || this.draining) return;
    this.pumping = true;
    try {
      while (this.inFlight < this.o.concurrency) {
        const key = this.readyKeys.shift();
        if (key !== undefined) {
          this.servePark(key);
          continue;
        }
        const h = this.queue.shift();
        if (!h) break;
        if (this.held.get(h.job.id) !== h || h.state !== 'queued') continue;
        const limit = h.job.rate_limit;
        if (!limit) {
          this.startAttempt(h);
          continue;
        }
        const k = rateLimitKey(h.job.tenant_id, h.job.destination.url);
        const park = this.parks.get(k);
        if (park && park.fifo.size > 0) {
          this.park(h, k, park);
          continue;
        }
        const wait = this.limiter.take(k, limit, this.o.clock.now());
        if (wait === 0) this.startAttempt(h);
        else this.park(h, k, park, wait);
      }
    } finally {
      this.pumping = false;
    }
    if (this.backlog && this.waiting <= this.o.capacity / 2) this.requestFill();
  }

  private park(h: Held, key: string, park: Park | undefined, firstWait?: number): void {
    const limit = h.job.rate_limit!;
    const ahead = park ? park.fifo.size : 0;
    const estimate = boundedWait((firstWait ?? 0) + (ahead * 1000) / Math.max(MIN_RPS, limit.rps));
    const now = this.o.clock.now();
    if (estimate > this.o.maxParkMs) {
      // too long to hold in memory: back to the store, due when its turn should come
      this.held.delete(h.job.id);
      this.leaveWaiting(h);
      this.o.events.emit({ type: 'ratelimit.wait', tenant_id: h.job.tenant_id, wait_ms: estimate, released: true });
      this.releaseLater(h.job.id, now + estimate);
      return;
    }
    this.o.events.emit({ type: 'ratelimit.wait', tenant_id: h.job.tenant_id, wait_ms: estimate, released: false });
    let p = park;
    if (!p) {
      p = { fifo: new Fifo<Held>(), timer: null };
      this.parks.set(key, p);
    }
    h.state = 'parked';
    this.parkedCount++;
    p.fifo.push(h);
    if (!p.timer && firstWait !== undefined) this.armPark(key, p, firstWait);
  }

  private armPark(key: string, p: Park, ms: number): void {
    p.timer = this.o.clock.setTimer(ms, () => {
      p.timer = null;
      this.readyKeys.push(key);
      this.pump();
    });
  }

  private servePark(key: string): void {
    const p = this.parks.get(key);
    if (!p || p.timer) return;
    while (p.fifo.size > 0) {
      const h = p.fifo.peek() as Held;
      if (this.held.get(h.job.id) !== h || h.state !== 'parked') {
        p.fifo.shift();
        continue;
      }
      if (this.inFlight >= this.o.concurrency) {
        this.readyKeys.push(key);
        return;
      }
      const wait = this.limiter.take(key, h.job.rate_limit!, this.o.clock.now());
      if (wait > 0) {
        this.armPark(key, p, wait);
        return;
      }
      p.fifo.shift();
      this.parkedCount--;
      h.state = 'queued';
      this.startAttempt(h);
    }
    this.parks.delete(key);
  }

  private startAttempt(h: Held): void {
    const job = h.job;
    h.state = 'inflight';
    this.waiting--;
    this.inFlight++;
    const attempt = job.attempts + 1;
    const startedAt = this.o.clock.now();
    const dueAt = job.status === 'retrying' && job.next_attempt_at !== null ? job.next_attempt_at : job.run_at;
    h.startedAt = startedAt;
    this.unmarked.add(h);
    this.armMark();
    this.o.events.emit({
      type: 'attempt.started',
      job_id: job.id,
      tenant_id: job.tenant_id,
      attempt,
      lateness_ms: Math.max(0, startedAt - dueAt),
    });
    const t0 = performance.now();
    this.o
      .deliver({
        job_id: job.id,
        tenant_id: job.tenant_id,
        destination: job.destination,
        payload_json: job.payload_json,
        timestamp_s: Math.floor(startedAt / 1000),
      })
      .then(
        (result) => this.finish(h, attempt, startedAt, performance.now() - t0, result),
        (err: unknown) =>
          // the dispatcher returns outcomes as values; this is a bug guard, not a path
          this.finish(h, attempt, startedAt, performance.now() - t0, {
            outcome: 'retryable_error',
            error_kind: 'connect',
            status_code: null,
            error: `internal: ${(err as Error)?.message ?? String(err)}`,
            response_body: null,
            retry_after_ms: null,
          }),
      );
  }

  private finish(h: Held, attempt: number, startedAt: number, durationMs: number, result: DeliveryResult): void {
    this.inFlight--;
    this.unmarked.delete(h);
    if (this.held.get(h.job.id) === h) this.held.delete(h.job.id);
    const job = h.job;
    if (!h.abandoned) {
      const now = this.o.clock.now();
      const next = nextStep({
        result,
        attempt,
        retry: job.retry,
        now,
        random: this.o.random,
        retryAfterMaxMs: this.o.retryAfterMaxMs,
      });
      const error = result.outcome === 'success' ? null : result.error;
      const errorKind = result.outcome === 'success' ? null : result.error_kind;
      this.writer.complete(
        {
          owner: this.owner,
          next,
          attempt: {
            job_id: job.id,
            attempt,
            started_at: startedAt,
            finished_at: startedAt + Math.round(durationMs),
            duration_ms: Math.round(durationMs),
            outcome: result.outcome,
            error_kind: errorKind,
            status_code: result.status_code,
            error,
            response_body: result.response_body,
          },
        },
        () => {
          if (next.status === 'retrying' && !h.cancelled) this.notifyDue(next.next_attempt_at);
        },
      );
      const nextStatus: JobStatus = h.cancelled ? 'cancelled' : next.status;
      this.o.events.emit({
        type: 'attempt.finished',
        job_id: job.id,
        tenant_id: job.tenant_id,
        attempt,
        outcome: result.outcome,
        error_kind: errorKind,
        status_code: result.status_code,
        duration_ms: durationMs,
        next_status: nextStatus,
        next_attempt_at: next.status === 'retrying' && !h.cancelled ? next.next_attempt_at : null,
      });
      if (!h.cancelled) {
        this.o.events.emit({ type: 'job.status', job_id: job.id, tenant_id: job.tenant_id, from: 'running', to: next.status, reason: result.outcome });
      }
    }
    if (this.inFlight === 0 && this.idleWaiters.length) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    this.pump();
  }

  /** A job this engine now holds joins the memory queue. */
  private enqueue(job: ClaimedJob): void {
    const h: Held = { job, state: 'queued', cancelled: false, abandoned: false, startedAt: 0 };
    this.held.set(job.id, h);
    this.queue.push(h);
    this.waiting++;
  }

  private pumpSoon(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Marks running the attempts that have been in flight for MARK_AFTER_MS, then re-arms. */
  private armMark(): void {
    if (this.markTimer || this.unmarked.size === 0) return;
    this.markTimer = this.o.clock.setTimer(MARK_AFTER_MS, () => {
      this.markTimer = null;
      const cutoff = this.o.clock.now() - MARK_AFTER_MS;
      for (const h of this.unmarked) {
        if (h.startedAt > cutoff) continue;
        this.unmarked.delete(h);
        this.writer.markRunning(h.job.id);
      }
      this.armMark();
    });
  }

  private leaveWaiting(h: Held): void {
    this.waiting--;
    if (h.state === 'parked') this.parkedCount--;
    else if (h.state === 'ahead') this.aheadCount--;
    h.state = 'queued';
  }

  // ── releases for long rate-limit waits, grouped per second of due time ──
  private releases = new Map<number, string[]>();
  private releaseScheduled = false;

  private releaseLater(id: string, dueAt: number): void {
    const slot = Math.ceil(dueAt / 1000) * 1000;
    const ids = this.releases.get(slot);
    if (ids) ids.push(id);
    else this.releases.set(slot, [id]);
    if (this.releaseScheduled) return;
    this.releaseScheduled = true;
    setImmediate(() => void this.flushReleases());
  }

  private async flushReleases(): Promise<void> {
    this.releaseScheduled = false;
    const batches = this.releases;
    this.releases = new Map();
    const now = this.o.clock.now();
    for (const [slot, ids] of batches) {
      try {
        await this.o.store.release(ids, this.owner, now, slot);
        this.scheduler.wakeAt(slot);
      } catch (err) {
        // still leased to us: the lease expires and the poll frees them
        this.o.events.emit({ type: 'store.error', op: 'release', error: (err as Error).message });
      }
    }
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

  private armRenew(): void {
    const every = Math.max(250, Math.floor(this.o.leaseMs / 3));
    this.renewTimer = this.o.clock.setTimer(every, () => {
      const run = this.held.size > 0 ? this.o.store.renewLeases(this.owner, this.o.clock.now(), this.o.leaseMs) : Promise.resolve(0);
      void run
        .catch((err: Error) => this.o.events.emit({ type: 'store.error', op: 'renew', error: err.message }))
        .finally(() => {
          if (this.isRunning) this.armRenew();
        });
    });
  }
}
