/*
 * Which destinations this engine may deliver, when the store holds destinations under a lease
 * (Store.laneLeases: PostgreSQL, several instances on one database). One instance at a time
 * delivers a destination, so its lane in that instance's memory (slots, tokens, circuit) paces it
 * for the whole cluster. Per destination (tenant, origin):
 *
 *   not held ──(a claim returned its jobs: the store took it for us)───▶ held, until claim time + lease;
 *                                                                        its lane takes the state left
 *   held ──(sync, every lease/3 and on a circuit change: kept)─────────▶ held, until sync time + lease
 *   held ──(sync: its lane idle and unused for a lease; or draining)────▶ given up, its state written
 *   held ──(sync: the store has it held by another; or its expiry
 *           passed without a sync that renewed it)───────────────────────▶ lost: its waiting jobs go back
 *
 * Claims and syncs never overlap (one runs after the other): a sync gives up every destination it
 * does not keep, so a destination a claim took while a sync was being written would be given up
 * behind this engine's back. A job joins its lane only while its destination is held (else it
 * goes back to the store, due now, for the holder to claim); jobs are created already held here
 * (claim at insert) only for destinations held here.
 */

import type { Clock } from '../clock.js';
import type { EventBus } from '../observability/events.js';
import type { ClaimedJob, LaneLease, LaneSync, Store } from '../store/store.js';
import type { Held } from './held.js';
import type { Lanes } from './lanes.js';

export interface LaneLeasesOptions {
  store: Store;
  clock: Clock;
  events: EventBus;
  owner: string;
  leaseMs: number;
  lanes: Lanes;
  /** A destination is no longer held here: these jobs waited in its lane and must go back. */
  onLost: (key: string, waiting: Held[]) => void;
}

interface Held_ {
  tenant_id: string;
  origin: string;
  /** Held until then, as far as this engine knows (its clock at the last claim or sync + lease). */
  until: number;
  /** Last taken, or asked about for a job created here. */
  usedAt: number;
  /** The lane's state when the engine began to drain (its lanes are gone after). */
  final?: Omit<LaneLease, 'tenant_id' | 'origin'>;
}

export class LaneLeases {
  private readonly held = new Map<string, Held_>();
  /** The claim or sync running now: the next one starts after it. */
  private turn: Promise<unknown> = Promise.resolve();
  private syncing = false;
  private syncAgain = false;
  private stopped = false;

  constructor(private readonly o: LaneLeasesOptions) {}

  get size(): number {
    return this.held.size;
  }

  /** This engine may deliver the destination `key` now. */
  holds(key: string): boolean {
    const h = this.held.get(key);
    return h !== undefined && h.until > this.o.clock.now();
  }

  /** Holds, and counts as a use (a job about to be created held here): not given up for a lease. */
  use(key: string): boolean {
    if (!this.holds(key)) return false;
    (this.held.get(key) as Held_).usedAt = this.o.clock.now();
    return true;
  }

  /**
   * Runs a claim (which takes the destinations of what it returns), then records those destinations
   * as held and gives the ones new to this engine the state their previous holder left.
   */
  claim(run: () => Promise<ClaimedJob[]>, now: number): Promise<ClaimedJob[]> {
    return this.exclusive(async () => {
      const jobs = await run();
      const until = now + this.o.leaseMs;
      const keys = new Map<string, { tenant_id: string; origin: string }>();
      for (const j of jobs) {
        const key = this.o.lanes.keyOf(j.tenant_id, j.destination.url);
        if (!keys.has(key)) keys.set(key, { tenant_id: j.tenant_id, origin: this.o.lanes.originOf(j.destination.url) });
      }
      const fresh = [...keys].filter(([key]) => !this.holds(key)).map(([, k]) => k);
      // held here only once the lanes have their state: a job created here meanwhile must not use
      // a bucket that the state left by the previous holder would then replace
      if (fresh.length > 0) {
        try {
          for (const lease of await this.o.store.loadLanes(fresh)) this.o.lanes.restore(lease);
        } catch (err) {
          // the jobs are ours already: deliver them with the lane as this engine knows it
          this.o.events.emit({ type: 'store.error', op: 'lanes', error: (err as Error).message });
        }
      }
      for (const [key, k] of keys) {
        const h = this.held.get(key);
        if (h) {
          h.until = until;
          h.usedAt = now;
        } else {
          this.held.set(key, { ...k, until, usedAt: now });
        }
      }
      return jobs;
    });
  }

  /** Renews the destinations still in use, gives up the rest (every lease/3, and on a circuit change). */
  sync(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.syncing) {
      this.syncAgain = true;
      return Promise.resolve();
    }
    this.syncing = true;
    return this.exclusive(async () => {
      do {
        this.syncAgain = false;
        await this.syncOnce(false);
      } while (this.syncAgain && !this.stopped);
    })
      .catch((err: Error) => this.o.events.emit({ type: 'store.error', op: 'lanes', error: err.message }))
      .finally(() => {
        this.syncing = false;
      });
  }

  /** Keeps each lane's state now, for giveUpAll (a draining engine forgets its lanes before the end). */
  freeze(): void {
    const now = this.o.clock.now();
    for (const [key, h] of this.held) h.final = this.o.lanes.get(key)?.lease(now);
  }

  /** Gives every destination up, with its lane's state (at drain, after the last attempt). */
  giveUpAll(): Promise<void> {
    this.stopped = true;
    return this.exclusive(() => this.syncOnce(true));
  }

  private async syncOnce(all: boolean): Promise<void> {
    if (this.held.size === 0) return;
    const now = this.o.clock.now();
    const list: LaneSync[] = [];
    for (const [key, h] of this.held) {
      const lane = this.o.lanes.get(key);
      // expired unrenewed (the store was unreachable): another instance may hold it already
      if (!all && h.until <= now) this.lose(key);
      const used = Math.max(h.usedAt, lane?.lastUsedAt ?? 0);
      const keep = !all && h.until > now && ((lane !== undefined && !lane.isIdle(now)) || now - used < this.o.leaseMs);
      const state = h.final ?? lane?.lease(now) ?? { circuit: 'closed' as const, failures: 0, open_until: 0, cooldown_ms: null, tokens: null, tokens_at: null };
      list.push({ tenant_id: h.tenant_id, origin: h.origin, ...state, keep });
      // given up from now on: nothing new starts for it while the statement runs
      if (!keep) this.held.delete(key);
    }
    let kept: Set<string>;
    try {
      kept = new Set((await this.o.store.syncLanes(this.o.owner, now, this.o.leaseMs, list)).map((k) => `${k.tenant_id} ${k.origin}`));
    } catch (err) {
      this.o.events.emit({ type: 'store.error', op: 'lanes', error: (err as Error).message });
      // not renewed: what has passed its expiry may be another instance's by now
      const at = this.o.clock.now();
      for (const [key, h] of this.held) if (h.until <= at) this.lose(key);
      return;
    }
    for (const l of list) {
      if (!l.keep) continue;
      const key = `${l.tenant_id} ${l.origin}`;
      const h = this.held.get(key);
      if (!h) continue;
      if (kept.has(key)) h.until = Math.max(h.until, now + this.o.leaseMs);
      else this.lose(key);
    }
  }

  private lose(key: string): void {
    const h = this.held.get(key);
    if (!h) return;
    this.held.delete(key);
    const waiting = this.o.lanes.giveBack(key);
    this.o.events.emit({ type: 'lane.lost', tenant_id: h.tenant_id, origin: h.origin, released: waiting.length });
    this.o.onLost(key, waiting);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }
}
