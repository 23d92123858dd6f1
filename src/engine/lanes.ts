/*
 * The lanes: one per (tenant, destination origin) (lane.ts), and the order they are served in.
 *
 * Fair share: ready lanes sit in a ring per tenant, and tenants with a ready lane sit in one ring.
 * Each take() serves the next tenant's next lane one job, then puts both at the back of their
 * rings, so a tenant with 100,000 jobs waiting and a tenant with one take turns (the `A B C A B C`
 * of round-robin), and so do the destinations within a tenant. A tenant with tenantMaxInFlight
 * attempts out leaves the ring until one finishes, so one tenant's slow receivers can never hold
 * the whole pool.
 *
 * A lane leaves the ring when it cannot start a job: it comes back when its timer fires (a token,
 * a cool-down), when one of its attempts finishes (a slot, a probe's result) or when a job joins.
 *
 * A job that would wait in its lane longer than maxParkMs for tokens or a circuit (a slow rate limit,
 * an open circuit) is not kept in memory: add() answers `release` with the time its turn should
 * come, and the engine gives it back to the store, due then (no attempt spent). A wait for a slot
 * is not a reason: it is only an estimate (from attempt times a busy event loop inflates), and
 * giving a fast destination's backlog back to the store with a guessed due time left receivers idle
 * (measured: warm deliveries 2,153/s before lanes, 716-1,242/s with such releases).
 */

import type { Clock, Timer } from '../clock.js';
import type { DeliveryResult } from '../domain/attempt.js';
import type { CircuitPolicy, CircuitState } from './circuit.js';
import { Fifo } from './fifo.js';
import type { Held } from './held.js';
import { Lane } from './lane.js';
import type { LaneLease } from '../store/store.js';

export interface LanesOptions {
  clock: Clock;
  /** DESTINATION_MAX_IN_FLIGHT: attempts in flight per lane unless a job's rate_limit says otherwise. */
  defaultMaxInFlight: number;
  /** TENANT_MAX_IN_FLIGHT: attempts in flight per tenant, all its lanes together. */
  tenantMaxInFlight?: number;
  circuit: CircuitPolicy;
  /** A job that would wait longer than this for a token or a circuit goes back to the store meanwhile. */
  maxParkMs: number;

  /** A lane became ready again (its timer fired): the engine should take. */
  onReady: () => void;
  /** A circuit changed state. Jobs a newly opened circuit would hold too long are in `released`. */
  onCircuit: (lane: Lane, from: CircuitState, to: CircuitState, released: Held[]) => void;
  /** Lanes kept at most; idle ones are forgotten first. */
  maxLanes?: number;
}

export type JoinOutcome =
  | { kind: 'waiting'; waitMs: number }
  | { kind: 'release'; dueAt: number; waitMs: number };

interface Ring {
  lanes: Fifo<Lane>;
  queued: boolean;
  /** Lanes of this tenant, ready or not. */
  count: number;
  /** Attempts in flight of this tenant. */
  inFlight: number;
  /** At its tenant cap: out of the ring of tenants until an attempt finishes. */
  capped: boolean;
}

interface LaneSlot {
  lane: Lane;
  ring: Ring;
  queued: boolean;
  timer: Timer | null;
  timerAt: number;
}

export class Lanes {
  private readonly slots = new Map<string, LaneSlot>();
  private readonly rings = new Map<string, Ring>();
  private readonly ready = new Fifo<Ring>();
  private readonly origins = new Map<string, string>();
  private readonly maxLanes: number;
  private readonly tenantCap: number;

  constructor(private readonly o: LanesOptions) {
    this.maxLanes = o.maxLanes ?? 10_000;
    this.tenantCap = o.tenantMaxInFlight ?? Infinity;
  }

  /** The lane key of a job: its tenant and its destination's origin. */
  keyOf(tenantId: string, url: string): string {
    return `${tenantId} ${this.originOf(url)}`;
  }

  /** The origin of a destination URL (cached). */
  originOf(url: string): string {
    let origin = this.origins.get(url);
    if (origin === undefined) {
      if (this.origins.size >= 10_000) this.origins.clear();
      origin = new URL(url).origin;
      this.origins.set(url, origin);
    }
    return origin;
  }

  /** A job joins its lane, or is told to go back to the store until its turn. */
  add(h: Held): JoinOutcome {
    const now = this.o.clock.now();
    const slot = this.slotFor(this.keyOf(h.job.tenant_id, h.job.destination.url), h.job.tenant_id, h.job.destination.url, now);
    const est = slot.lane.estimateWaitMs(h, now);
    const waitMs = Math.max(est.paced, est.slots);
    if (est.paced > this.o.maxParkMs) return { kind: 'release', dueAt: now + waitMs, waitMs };
    slot.lane.push(h, now);
    this.enqueue(slot);
    return { kind: 'waiting', waitMs };
  }

  /** The next job to start, tenants and then their destinations served in turn; null when none may start now. */
  take(): Held | null {
    const now = this.o.clock.now();
    for (let ring = this.ready.shift(); ring; ring = this.ready.shift()) {
      ring.queued = false;
      if (ring.inFlight >= this.tenantCap) {
        ring.capped = true; // its lanes stay in its ring; a finishing attempt brings it back
        continue;
      }
      for (let lane = ring.lanes.shift(); lane; lane = ring.lanes.shift()) {
        const slot = this.slots.get(lane.key) as LaneSlot;
        slot.queued = false;
        const next = lane.take(now);
        if (typeof next === 'number') {
          if (next !== Infinity) this.arm(slot, next);
          continue;
        }
        ring.inFlight++;
        this.enqueue(slot);
        if (!ring.queued && ring.lanes.size > 0) {
          ring.queued = true;
          this.ready.push(ring);
        }
        return next;
      }
    }
    return null;
  }

  /** A waiting job left memory (cancelled, or given back). */
  dropped(h: Held): void {
    const slot = h.laneKey === null ? undefined : this.slots.get(h.laneKey);
    slot?.lane.dropped();
  }

  /** An attempt of a job that left its lane finished: frees its slot and tells its circuit. */
  finished(h: Held, result: DeliveryResult, durationMs: number): void {
    const slot = h.laneKey === null ? undefined : this.slots.get(h.laneKey);
    if (!slot) return;
    const ring = slot.ring;
    ring.inFlight--;
    slot.lane.finished(h, result, durationMs, this.o.clock.now());
    if (ring.capped && ring.inFlight < this.tenantCap) {
      ring.capped = false;
      if (!ring.queued && ring.lanes.size > 0) {
        ring.queued = true;
        this.ready.push(ring);
      }
    }
    this.enqueue(slot);
  }

  /** Closes a lane's circuit by hand. Returns false when there is no such lane. */
  reset(key: string): boolean {
    const slot = this.slots.get(key);
    if (!slot) return false;
    slot.lane.circuit.reset();
    this.enqueue(slot);
    this.o.onReady();
    return true;
  }

  get(key: string): Lane | undefined {
    return this.slots.get(key)?.lane;
  }

  /** Every lane, in no particular order. */
  all(): Lane[] {
    return [...this.slots.values()].map((s) => s.lane);
  }

  get size(): number {
    return this.slots.size;
  }

  /** Stops every timer and forgets every lane (at drain: the jobs go back to the store). */
  clear(): void {
    for (const slot of this.slots.values()) slot.timer?.cancel();
    this.slots.clear();
    this.rings.clear();
    while (this.ready.shift());
  }

  /** A destination this engine took over from another instance: its lane starts from the state left. */
  restore(lease: LaneLease): void {
    const key = `${lease.tenant_id} ${lease.origin}`;
    const slot = this.slotFor(key, lease.tenant_id, lease.origin, this.o.clock.now());
    slot.lane.restore(lease);
  }

  /** The jobs waiting in a lane, taken out of it (its destination is no longer this engine's to deliver). */
  giveBack(key: string): Held[] {
    return this.slots.get(key)?.lane.takeAll() ?? [];
  }

  /** The lane of `key`, created when new (`url` is the destination URL, or its origin). */
  private slotFor(key: string, tenant: string, url: string, now: number): LaneSlot {
    const found = this.slots.get(key);
    if (found) return found;
    if (this.slots.size >= this.maxLanes) this.evictIdle(now);
    let ring = this.rings.get(tenant);
    if (!ring) {
      ring = { lanes: new Fifo<Lane>(4), queued: false, count: 0, inFlight: 0, capped: false };
      this.rings.set(tenant, ring);
    }
    ring.count++;
    const slot: LaneSlot = { lane: undefined as unknown as Lane, ring, queued: false, timer: null, timerAt: Infinity };
    slot.lane = new Lane(key, tenant, this.originOf(url), this.o.defaultMaxInFlight, this.o.circuit, (from, to) => this.circuitChanged(slot, from, to), now);
    this.slots.set(key, slot);
    return slot;
  }

  private circuitChanged(slot: LaneSlot, from: CircuitState, to: CircuitState): void {
    let released: Held[] = [];
    if (to === 'open' && slot.lane.circuit.openUntil - this.o.clock.now() > this.o.maxParkMs) released = slot.lane.takeAll();
    if (to === 'closed') this.enqueue(slot);
    this.o.onCircuit(slot.lane, from, to, released);
  }

  /** Puts a lane in its tenant's ring, and the tenant in the ring of tenants, if not there yet. */
  private enqueue(slot: LaneSlot): void {
    if (slot.queued || slot.lane.waiting === 0) return;
    slot.queued = true;
    slot.ring.lanes.push(slot.lane);
    if (!slot.ring.queued && !slot.ring.capped) {
      slot.ring.queued = true;
      this.ready.push(slot.ring);
    }
  }

  private arm(slot: LaneSlot, ms: number): void {
    const at = this.o.clock.now() + ms;
    if (slot.timer && slot.timerAt <= at) return;
    slot.timer?.cancel();
    slot.timerAt = at;
    slot.timer = this.o.clock.setTimer(ms, () => {
      slot.timer = null;
      slot.timerAt = Infinity;
      this.enqueue(slot);
      this.o.onReady();
    });
  }

  private evictIdle(now: number): void {
    for (const [key, slot] of this.slots) {
      if (slot.queued || slot.timer || !slot.lane.isIdle(now)) continue;
      this.slots.delete(key);
      if (--slot.ring.count === 0 && slot.ring.inFlight === 0) this.rings.delete(slot.lane.tenantId);
    }
  }
}
