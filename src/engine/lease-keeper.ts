// Keeps the store's view of the jobs this engine holds current, in bulk: marks attempts running once
// they have been in flight MARK_AFTER_MS (most finish sooner and are never marked, saving a write
// each), and renews every lease this engine holds every LEASE_MS / 3 in one statement (and, on
// PostgreSQL, its destinations' leases in another, at the same time).

import type { Clock, Timer } from '../clock.js';
import type { EventBus } from '../observability/events.js';
import type { Store } from '../store/store.js';
import type { Held } from './held.js';
import type { WriteBatcher } from './write-batcher.js';

/**
 * An attempt is written as `running` only once it has been in flight this long: most deliveries
 * finish sooner, and skipping their mark saves a write per job. Slow ones show as running.
 */
export const MARK_AFTER_MS = 100;

export interface LeaseKeeperOptions {
  store: Store;
  clock: Clock;
  events: EventBus;
  writer: WriteBatcher;
  owner: string;
  leaseMs: number;
  /** Jobs this engine holds now (no renewal statement when none). */
  heldCount: () => number;
  /** Renews whatever else this engine holds under a lease, on the same period (destinations: lane-leases.ts). */
  renewAlso?: () => Promise<void>;
}

export class LeaseKeeper {
  private readonly unmarked = new Set<Held>();
  private markTimer: Timer | null = null;
  private renewTimer: Timer | null = null;
  private stopped = false;

  constructor(private readonly o: LeaseKeeperOptions) {}

  start(): void {
    this.armRenew();
  }

  stop(): void {
    this.stopped = true;
    this.renewTimer?.cancel();
    this.markTimer?.cancel();
    this.markTimer = null;
  }

  attemptStarted(h: Held): void {
    this.unmarked.add(h);
    this.armMark();
  }

  attemptFinished(h: Held): void {
    this.unmarked.delete(h);
  }

  private armMark(): void {
    if (this.markTimer || this.stopped || this.unmarked.size === 0) return;
    this.markTimer = this.o.clock.setTimer(MARK_AFTER_MS, () => {
      this.markTimer = null;
      const cutoff = this.o.clock.now() - MARK_AFTER_MS;
      for (const h of this.unmarked) {
        if (h.startedAt > cutoff) continue;
        this.unmarked.delete(h);
        this.o.writer.markRunning(h.job.id);
      }
      this.armMark();
    });
  }

  private armRenew(): void {
    const every = Math.max(250, Math.floor(this.o.leaseMs / 3));
    this.renewTimer = this.o.clock.setTimer(every, () => {
      const jobs = this.o.heldCount() > 0 ? this.o.store.renewLeases(this.o.owner, this.o.clock.now(), this.o.leaseMs) : Promise.resolve(0);
      const run = this.o.renewAlso ? Promise.all([jobs, this.o.renewAlso()]) : jobs;
      void run
        .catch((err: Error) => this.o.events.emit({ type: 'store.error', op: 'renew', error: err.message }))
        .finally(() => {
          if (!this.stopped) this.armRenew();
        });
    });
  }
}
