// Gives jobs back to the store to wait there instead of in memory (a long rate-limit wait, a long
// queue behind a slow receiver, an open circuit), due when their turn should come. Releases are
// grouped per second of due time and written on the next turn of the event loop, one statement
// per group.

import type { Clock } from '../clock.js';
import type { EventBus } from '../observability/events.js';
import type { Store } from '../store/store.js';

export class Releaser {
  private pending = new Map<number, string[]>();
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly owner: string,
    private readonly clock: Clock,
    private readonly events: EventBus,
    /** The released jobs become due at `at`: the engine wakes for them then. */
    private readonly onDue: (at: number) => void,
  ) {}

  later(id: string, dueAt: number): void {
    const slot = Math.ceil(dueAt / 1000) * 1000;
    const ids = this.pending.get(slot);
    if (ids) ids.push(id);
    else this.pending.set(slot, [id]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  async flush(): Promise<void> {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    const now = this.clock.now();
    for (const [slot, ids] of batches) {
      try {
        await this.store.release(ids, this.owner, now, slot);
        this.onDue(slot);
      } catch (err) {
        // still leased to us: the lease expires and the poll frees them
        this.events.emit({ type: 'store.error', op: 'release', error: (err as Error).message });
      }
    }
  }
}
