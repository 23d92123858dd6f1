// Group commit for the engine's writes. Marks (attempt started) and completions (attempt finished)
// are gathered for a few milliseconds and written together, one transaction each, so the
// store sees a few large writes instead of thousands of small ones. A failed write keeps its
// batch and is tried again: the jobs stay leased meanwhile, and if the process dies the lease
// brings them back (at-least-once).

import type { Clock } from '../clock.js';
import type { EventBus } from '../observability/events.js';
import type { AttemptCompletion, Store } from '../store/store.js';

/** How long engine writes gather before they are committed together. */
const FLUSH_WINDOW_MS = 5;
/** ...unless this many are waiting already. */
const FLUSH_AT_OPS = 1000;

export class WriteBatcher {
  private marks: string[] = [];
  private completions: AttemptCompletion[] = [];
  private afterFlush: (() => void)[] = [];
  private scheduled = false;
  private flushing: Promise<void> | null = null;
  private retryDelayMs = 50;

  constructor(
    private readonly store: Store,
    private readonly owner: string,
    private readonly clock: Clock,
    private readonly events: EventBus,
  ) {}

  markRunning(id: string): void {
    this.marks.push(id);
    this.schedule();
  }

  /** Queues a completion; `done` runs once it is committed. */
  complete(c: AttemptCompletion, done?: () => void): void {
    this.completions.push(c);
    if (done) this.afterFlush.push(done);
    this.schedule();
  }

  get pending(): number {
    return this.marks.length + this.completions.length;
  }

  /** Writes everything queued so far; resolves when it is committed. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending === 0) return;
    this.flushing = this.write().finally(() => (this.flushing = null));
    await this.flushing;
  }

  private schedule(): void {
    if (this.pending >= FLUSH_AT_OPS && !this.flushing) {
      void this.flush().catch(() => undefined);
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    // A commit costs about the pages it dirties, and jobs written together share pages: waiting a
    // few milliseconds turns one transaction per job at low rates into one per several. Nothing
    // waits on these writes but the bookkeeping itself (deliveries are already made).
    setTimeout(() => {
      this.scheduled = false;
      void this.flush().catch(() => undefined);
    }, FLUSH_WINDOW_MS);
  }

  private async write(): Promise<void> {
    const marks = this.marks;
    const completions = this.completions;
    const after = this.afterFlush;
    this.marks = [];
    this.completions = [];
    this.afterFlush = [];
    const now = this.clock.now();
    const started = performance.now();
    try {
      if (marks.length) await this.store.markRunning(marks, this.owner, now);
      if (completions.length) await this.store.completeAttempts(completions, now);
      this.retryDelayMs = 50;
    } catch (err) {
      // keep the batch, in order, ahead of anything queued meanwhile, and try again shortly
      this.marks = marks.concat(this.marks);
      this.completions = completions.concat(this.completions);
      this.afterFlush = after.concat(this.afterFlush);
      this.events.emit({ type: 'store.error', op: 'engine.write', error: (err as Error).message });
      const delay = this.retryDelayMs;
      this.retryDelayMs = Math.min(5000, this.retryDelayMs * 2);
      setTimeout(() => this.schedule(), delay).unref();
      throw err;
    }
    const ms = performance.now() - started;
    this.events.emit({ type: 'store.write', op: 'engine.write', count: marks.length + completions.length, duration_ms: ms });
    for (const fn of after) fn();
  }
}
