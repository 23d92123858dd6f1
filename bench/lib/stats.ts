// Small numeric helpers shared by the benchmark's processes.

/** Wall-clock epoch milliseconds with sub-millisecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The p-th percentile (0..100) of an ascending array, nearest-rank; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** Median of the finite values; null when there are none. */
export function median(values: (number | null | undefined)[]): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A growable Float64Array: millions of samples without millions of boxed numbers. */
export class Samples {
  private buf: Float64Array;
  length = 0;

  constructor(initial = 1024) {
    this.buf = new Float64Array(initial);
  }

  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }

  sorted(): Float64Array {
    return this.buf.slice(0, this.length).sort();
  }

  clear(): void {
    this.length = 0;
  }
}

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function dist(s: Samples): Dist {
  const v = s.sorted();
  return { n: v.length, p50: percentile(v, 50), p99: percentile(v, 99), p999: percentile(v, 99.9), max: v.length ? (v[v.length - 1] as number) : NaN };
}
