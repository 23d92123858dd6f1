// Housekeeping: prunes terminal jobs past the retention period and expired idempotency/dedupe
// records, a bounded batch at a time so it never holds the database for long.
import type { Clock, Timer } from '../clock.js';
import type { EventBus } from '../observability/events.js';
import type { Store } from '../store/store.js';

export class Housekeeper {
  private timer: Timer | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly events: EventBus,
    private readonly retentionMs: number,
    private readonly everyMs = 60_000,
  ) {}

  start(): void {
    this.timer = this.clock.setTimer(this.everyMs, () => void this.run().finally(() => this.start()));
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** One pass: up to 10 batches of 1000 jobs, then the expired keys. */
  async run(): Promise<number> {
    let total = 0;
    try {
      const now = this.clock.now();
      if (this.retentionMs > 0) {
        for (let i = 0; i < 10; i++) {
          const n = await this.store.pruneTerminal(now - this.retentionMs, 1000);
          total += n;
          if (n < 1000) break;
        }
      }
      await this.store.pruneExpiredKeys(now);
      if (total > 0) this.events.emit({ type: 'jobs.pruned', count: total });
    } catch (err) {
      this.events.emit({ type: 'store.error', op: 'prune', error: (err as Error).message });
    }
    return total;
  }
}
