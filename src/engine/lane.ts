/*
 * One destination lane: the jobs of one (tenant, destination origin) waiting in memory, and
 * everything that paces them: in-flight slots, the rate-limit bucket and the circuit (circuit.ts).
 *
 * A job leaves its lane (take) only when all three agree:
 *   a slot     inFlight < max_in_flight (the job's rate_limit.max_in_flight, else DESTINATION_MAX_IN_FLIGHT)
 *   the circuit closed, or half_open with no probe out (the job then is the probe)
 *   a token    only for a job with a rate_limit
 * Otherwise take() answers how long to wait: a number of ms (a token, a cool-down; the Lanes arm the
 * lane's timer) or Infinity (a slot or a probe's result: a finishing attempt wakes the lane). Jobs
 * leave in the order they joined. Waiting costs no attempt and holds no worker.
 */

import type { DeliveryResult } from '../domain/attempt.js';
import type { RateLimit } from '../domain/job.js';
import type { LaneLease } from '../store/store.js';
import { Circuit, verdictOf, type CircuitChange, type CircuitPolicy } from './circuit.js';
import { Fifo } from './fifo.js';
import type { Held } from './held.js';
import { MAX_WAIT_MS, TokenBucket } from './rate-limiter.js';

/** Weight of the newest attempt in the lane's average attempt duration. */
const AVG_WEIGHT = 0.2;

export class Lane {
  private readonly jobs = new Fifo<Held>();
  /** Jobs waiting in the lane (the Fifo may also hold dropped ones, skipped when they come up). */
  waiting = 0;
  inFlight = 0;
  readonly circuit: Circuit;
  private bucket: TokenBucket | null = null;
  /** The bucket's level as another instance left it, until a job with a rate_limit creates the bucket. */
  private level: { tokens: number; at: number } | null = null;
  /** The last rate limit a job of this lane went out under. */
  rateLimit: RateLimit | null = null;
  /** The in-flight cap the last job that joined asked for. */
  maxInFlight: number;
  /** Average attempt duration, to estimate how long a job joining the lane will wait. */
  avgMs = 0;
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  lastUsedAt: number;

  constructor(
    readonly key: string,
    readonly tenantId: string,
    readonly origin: string,
    private readonly defaultMaxInFlight: number,
    policy: CircuitPolicy,
    onCircuit: CircuitChange,
    now: number,
  ) {
    this.circuit = new Circuit(policy, onCircuit);
    this.maxInFlight = defaultMaxInFlight;
    this.lastUsedAt = now;
  }

  private capOf(h: Held): number {
    return h.job.rate_limit?.max_in_flight ?? this.defaultMaxInFlight;
  }

  /**
   * How long a job joining now would wait, roughly: `paced` for tokens and the circuit (exact
   * enough to decide whether it waits in memory), `slots` for the jobs ahead of it to finish (from
   * the lane's average attempt time, which a busy event loop inflates: shown, never acted on).
   */
  estimateWaitMs(h: Held, now: number): { paced: number; slots: number } {
    const ahead = this.waiting;
    const cap = this.capOf(h);
    let paced = 0;
    const limit = h.job.rate_limit;
    if (limit) {
      const free = this.bucketFor(limit, now).available(now);
      paced = (Math.max(0, ahead + 1 - free) * 1000) / limit.rps;
    }
    const c = this.circuit;
    if (c.state === 'open') paced = Math.max(paced, c.openUntil - now);
    else if (c.state === 'half_open' && c.probing) paced = Math.max(paced, this.avgMs);
    const queued = ahead + this.inFlight + 1 - cap;
    const slots = queued > 0 && this.avgMs > 0 ? Math.ceil(queued / cap) * this.avgMs : 0;
    return { paced: Math.min(MAX_WAIT_MS, Math.ceil(paced)), slots: Math.min(MAX_WAIT_MS, Math.ceil(slots)) };
  }

  push(h: Held, now: number): void {
    h.laneKey = this.key;
    this.jobs.push(h);
    this.waiting++;
    this.maxInFlight = this.capOf(h);
    this.lastUsedAt = now;
  }

  /** A waiting job left memory (cancelled, or given back to the store). */
  dropped(): void {
    this.waiting--;
  }

  /** The next job to start now, or how long until one may (Infinity: until an attempt finishes, or empty). */
  take(now: number): Held | number {
    let h = this.jobs.peek();
    while (h && h.state !== 'waiting') {
      this.jobs.shift();
      h = this.jobs.peek();
    }
    if (!h) return Infinity;
    if (this.inFlight >= this.capOf(h)) return Infinity;
    const wait = this.circuit.waitMs(now);
    if (wait > 0) return wait;
    const limit = h.job.rate_limit;
    if (limit) {
      const w = this.bucketFor(limit, now).take(limit, now);
      if (w > 0) return w;
      this.rateLimit = limit;
    }
    this.jobs.shift();
    this.waiting--;
    this.inFlight++;
    h.probe = this.circuit.admit();
    this.lastUsedAt = now;
    return h;
  }

  private bucketFor(limit: RateLimit, now: number): TokenBucket {
    if (!this.bucket) {
      this.bucket = new TokenBucket(limit, now, this.level ?? undefined);
      this.level = null;
    }
    return this.bucket;
  }

  /** What a hand-over to another instance carries: the circuit and the bucket's level now. */
  lease(now: number): Omit<LaneLease, 'tenant_id' | 'origin'> {
    const c = this.circuit;
    const level = this.bucket ? { tokens: this.bucket.available(now), at: now } : this.level;
    return {
      circuit: c.state,
      failures: c.failures,
      open_until: c.state === 'open' ? c.openUntil : 0,
      cooldown_ms: c.cooldown,
      tokens: level?.tokens ?? null,
      tokens_at: level?.at ?? null,
    };
  }

  /** Takes over the state the previous holder of this destination left. */
  restore(l: LaneLease): void {
    this.circuit.restore({ state: l.circuit, failures: l.failures, openUntil: l.open_until, cooldown: l.cooldown_ms });
    this.bucket = null;
    this.level = l.tokens !== null && l.tokens_at !== null ? { tokens: l.tokens, at: l.tokens_at } : null;
  }

  /** Every job waiting in the lane, taken out of it (to give back to the store). */
  takeAll(): Held[] {
    const out: Held[] = [];
    for (const h of this.jobs.drain()) if (h.state === 'waiting') out.push(h);
    this.waiting = 0;
    return out;
  }

  finished(h: Held, result: DeliveryResult, durationMs: number, now: number): void {
    this.inFlight--;
    this.avgMs = this.avgMs === 0 ? durationMs : this.avgMs * (1 - AVG_WEIGHT) + durationMs * AVG_WEIGHT;
    if (result.outcome !== 'success') {
      this.lastError = result.error;
      this.lastErrorAt = now;
    }
    this.lastUsedAt = now;
    this.circuit.record(verdictOf(result), h.probe, now);
  }

  /** Nothing here worth keeping: no jobs, none in flight, a healthy circuit, a full bucket. */
  isIdle(now: number): boolean {
    return (
      this.waiting === 0 &&
      this.inFlight === 0 &&
      this.circuit.state === 'closed' &&
      this.circuit.failures === 0 &&
      (this.bucket === null || this.bucket.isFull(now))
    );
  }
}
