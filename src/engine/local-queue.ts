/*
 * The local queue: every job this engine holds in memory, its state, and the counts that bound
 * memory (graphile-worker's localQueue plays this part there). A job's life here:
 *
 *   add ──(run_at in the future)──▶ ahead (heap by run_at, ONE timer) ──(run_at)──┐
 *   add ──(due)──────────────────────────────────────────────────────────────────┴─▶ waiting ──▶ onReady(h)
 *   waiting ──(started)──▶ inflight ──(finished)──▶ gone
 *   ahead | waiting ──(forget: cancelled, or remove: given back to the store)──▶ gone
 *   inflight ──(forget)──▶ inflight, cancelled: finishes, no further attempt
 *   inflight ──(abandon: drain timed out)──▶ inflight, abandoned: its result is ignored
 *
 * Memory stays bounded: held (ahead + waiting) + reserved ≤ capacity, where reserved counts slots
 * granted to jobs being created already held by this engine (claim at insert, see Intake). Attempts
 * in flight are bounded by the engine's concurrency, not by this count.
 */

import type { Clock, Timer } from '../clock.js';
import type { ClaimedJob } from '../store/store.js';
import { held, type Held } from './held.js';
import { MinHeap } from './min-heap.js';

export interface LocalQueueStats {
  /** Jobs in memory not yet in flight: held ahead and waiting in lanes. */
  queued: number;
  ahead: number;
  inFlight: number;
}

export class LocalQueue {
  private readonly held = new Map<string, Held>();
  private readonly ahead = new MinHeap<Held>((h) => h.job.run_at);
  private aheadTimer: Timer | null = null;
  private aheadAt = Infinity;
  private queued = 0;
  private aheadCount = 0;
  private reserved = 0;
  private attempts = 0;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    readonly capacity: number,
    /** A job became due: it joins its lane. */
    private readonly onReady: (h: Held) => void,
  ) {}

  /** Jobs the queue can take now (claimed, or created already held). */
  get room(): number {
    return this.capacity - this.queued - this.reserved;
  }

  /** Every job held: for lease renewal. */
  get size(): number {
    return this.held.size;
  }

  stats(): LocalQueueStats {
    return { queued: this.queued, ahead: this.aheadCount, inFlight: this.attempts };
  }

  /** Attempts in flight. */
  get inFlight(): number {
    return this.attempts;
  }

  /** Jobs in memory not in flight (held ahead and waiting). */
  get queuedCount(): number {
    return this.queued;
  }

  /** Grants up to n slots to jobs about to be created already held (see Intake). */
  reserve(n: number): number {
    const granted = Math.max(0, Math.min(n, this.room));
    this.reserved += granted;
    return granted;
  }

  unreserve(n: number): void {
    this.reserved = Math.max(0, this.reserved - n);
  }

  /** Holds a job: handed to onReady now if due, else at its run_at. */
  add(job: ClaimedJob): void {
    const h = held(job);
    this.held.set(job.id, h);
    this.queued++;
    if (job.run_at > this.clock.now()) {
      h.state = 'ahead';
      this.aheadCount++;
      this.ahead.push(h);
      this.armAhead();
      return;
    }
    this.onReady(h);
  }

  started(h: Held): void {
    h.state = 'inflight';
    this.queued--;
    this.attempts++;
  }

  finished(h: Held): void {
    this.attempts--;
    h.state = 'gone';
    if (this.held.get(h.job.id) === h) this.held.delete(h.job.id);
  }

  /**
   * A job was cancelled. Returns it when it was waiting (the caller takes it out of its lane);
   * one in flight is marked and finishes.
   */
  forget(id: string): Held | null {
    const h = this.held.get(id);
    if (!h) return null;
    if (h.state === 'inflight') {
      h.cancelled = true;
      return null;
    }
    const wasWaiting = h.state === 'waiting';
    this.remove(h);
    return wasWaiting ? h : null;
  }

  /** A job not in flight leaves memory (cancelled, or given back to the store). */
  remove(h: Held): void {
    if (h.state === 'inflight' || h.state === 'gone') return;
    if (h.state === 'ahead') this.aheadCount--;
    h.state = 'gone';
    this.queued--;
    this.held.delete(h.job.id);
  }

  /** Stops the ahead timer and takes every job not in flight out of memory (to give back). */
  stop(): string[] {
    this.stopped = true;
    this.aheadTimer?.cancel();
    this.aheadTimer = null;
    this.ahead.clear();
    const ids: string[] = [];
    for (const [id, h] of this.held) {
      if (h.state === 'inflight') continue;
      h.state = 'gone';
      ids.push(id);
      this.held.delete(id);
    }
    this.queued = 0;
    this.aheadCount = 0;
    return ids;
  }

  /** Marks every attempt still in flight abandoned and lets go of it. Returns their ids. */
  abandonInFlight(): string[] {
    const ids: string[] = [];
    for (const [id, h] of this.held) {
      if (h.state !== 'inflight') continue;
      h.abandoned = true;
      ids.push(id);
    }
    this.held.clear();
    return ids;
  }

  private armAhead(): void {
    const first = this.ahead.peek();
    if (!first || this.stopped || first.job.run_at >= this.aheadAt) return;
    this.aheadTimer?.cancel();
    this.aheadAt = first.job.run_at;
    this.aheadTimer = this.clock.setTimer(first.job.run_at - this.clock.now(), () => {
      this.aheadTimer = null;
      this.aheadAt = Infinity;
      this.releaseDue();
    });
  }

  /** Hands every job held ahead whose time has come to onReady, in run_at order. */
  private releaseDue(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (let h = this.ahead.peek(); h && h.job.run_at <= now; h = this.ahead.peek()) {
      this.ahead.pop();
      if (h.state !== 'ahead') continue; // cancelled meanwhile
      h.state = 'waiting';
      this.aheadCount--;
      this.onReady(h);
    }
    this.armAhead();
  }
}
