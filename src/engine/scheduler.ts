// The scheduler: a min-heap of wake-up times and ONE timer, set for the earliest.
// It holds times, not jobs (the store holds the jobs), and at most `maxEntries` of them, so a
// million scheduled jobs cost no more memory than a few: when full it keeps the earliest times and
// lets the store's nextDueAt (asked after every claim) and the periodic poll find the rest.

import type { Clock, Timer } from '../clock.js';

export class Scheduler {
  private readonly heap: number[] = [];
  private timer: Timer | null = null;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly onDue: () => void,
    // small on purpose: when full, each new time is compared with the latest held (a scan of the
    // leaves), and the store answers for everything beyond the earliest few hundred anyway
    private readonly maxEntries = 512,
  ) {}

  /** Asks for onDue() at time `at` (epoch ms); a time in the past means as soon as possible. */
  wakeAt(at: number): void {
    if (this.stopped) return;
    if (this.heap.length >= this.maxEntries) {
      // full: keep the earliest times only
      const latest = this.maxIndex();
      if (at >= (this.heap[latest] as number)) return;
      this.removeAt(latest);
    }
    this.push(at);
    this.arm();
  }

  /** Earliest time waited for, or null. */
  nextAt(): number | null {
    return this.heap.length ? (this.heap[0] as number) : null;
  }

  get size(): number {
    return this.heap.length;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.heap.length = 0;
  }

  private arm(): void {
    const first = this.heap[0];
    if (first === undefined || first >= this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = first;
    this.timer = this.clock.setTimer(first - this.clock.now(), () => this.fire());
  }

  private fire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    let due = false;
    while (this.heap.length && (this.heap[0] as number) <= now) {
      this.pop();
      due = true;
    }
    if (due && !this.stopped) this.onDue();
    this.arm();
  }

  // ── binary heap ──
  private push(v: number): void {
    this.heap.push(v);
    this.siftUp(this.heap.length - 1);
  }

  private pop(): number | undefined {
    return this.removeAt(0);
  }

  private removeAt(index: number): number | undefined {
    const h = this.heap;
    if (index >= h.length) return undefined;
    const out = h[index];
    const last = h.pop() as number;
    if (index < h.length) {
      h[index] = last;
      this.siftDown(index);
      this.siftUp(index);
    }
    return out;
  }

  private siftUp(i: number): void {
    const h = this.heap;
    const v = h[i] as number;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as number) <= v) break;
      h[i] = h[p] as number;
      i = p;
    }
    h[i] = v;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    const v = h[i] as number;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (h[r] as number) < (h[l] as number) ? r : l;
      if ((h[c] as number) >= v) break;
      h[i] = h[c] as number;
      i = c;
    }
    h[i] = v;
  }

  private maxIndex(): number {
    // the maximum of a min-heap is among its leaves
    let best = this.heap.length >> 1;
    for (let i = best + 1; i < this.heap.length; i++) if ((this.heap[i] as number) > (this.heap[best] as number)) best = i;
    return best;
  }
}
