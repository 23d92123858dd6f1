// The paced scenario's scheduled jobs fall due as evenly as they are sent (bench/lib/delays.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pacedDelay } from '../../bench/lib/delays.js';

describe('the paced scenario’s delays', () => {
  const MIN = 100;
  const MAX = 1000;
  const N = 20_000; // 20 s at 1,000 jobs/s, one job sent every millisecond

  it('schedules every other job, with a whole delay in [min, max)', () => {
    for (let i = 0; i < N; i++) {
      const d = pacedDelay(i, MIN, MAX);
      if (i % 2 === 0) assert.equal(d, undefined, `job ${i} is due at once`);
      else {
        assert.ok(Number.isInteger(d) && (d as number) >= MIN && (d as number) < MAX, `job ${i}: ${d}`);
      }
    }
  });

  it('covers the range evenly: each tenth of it gets a tenth of the jobs, within a percent', () => {
    const tenths = new Array<number>(10).fill(0);
    let scheduled = 0;
    for (let i = 1; i < N; i += 2) {
      tenths[Math.floor((((pacedDelay(i, MIN, MAX) as number) - MIN) / (MAX - MIN)) * 10)]! += 1;
      scheduled++;
    }
    for (const [k, n] of tenths.entries()) assert.ok(Math.abs(n / scheduled - 0.1) < 0.01, `tenth ${k}: ${n} of ${scheduled}`);
  });

  it('never puts two scheduled jobs due in the same millisecond, nor more than three in any 5 ms', () => {
    const perMs = new Map<number, number>();
    const per5 = new Map<number, number>();
    for (let i = 1; i < N; i += 2) {
      const due = i + (pacedDelay(i, MIN, MAX) as number); // sent at i ms
      perMs.set(due, (perMs.get(due) ?? 0) + 1);
      per5.set(Math.floor(due / 5), (per5.get(Math.floor(due / 5)) ?? 0) + 1);
    }
    assert.equal(Math.max(...perMs.values()), 1);
    assert.ok(Math.max(...per5.values()) <= 3, `at most ${Math.max(...per5.values())} in 5 ms`);
  });
});
