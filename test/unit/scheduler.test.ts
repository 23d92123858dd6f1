import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Scheduler } from '../../src/engine/scheduler.js';
import { Fifo } from '../../src/engine/fifo.js';
import { FakeClock } from '../support/fake-clock.js';

describe('scheduler', () => {
  it('wakes at the earliest time asked for, not before', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    const s = new Scheduler(clock, () => fired.push(clock.now()));
    s.wakeAt(5000);
    s.wakeAt(1000);
    s.wakeAt(3000);
    clock.advance(999);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, [1000]);
    clock.advance(10_000);
    assert.deepEqual(fired, [1000, 3000, 5000]);
  });

  it('keeps one timer however many times it holds', () => {
    const clock = new FakeClock(0);
    const s = new Scheduler(clock, () => undefined);
    for (let i = 0; i < 1000; i++) s.wakeAt(10_000 - i);
    assert.ok(clock.pendingTimers() <= 1, `timers: ${clock.pendingTimers()}`);
  });

  it('holds at most maxEntries times, keeping the earliest', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    const s = new Scheduler(clock, () => fired.push(clock.now()), 10);
    for (let i = 100; i > 0; i--) s.wakeAt(i * 10);
    assert.equal(s.size, 10);
    assert.equal(s.nextAt(), 10);
    clock.advance(1000);
    assert.deepEqual(fired, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  });

  it('fires once for many times already past', () => {
    const clock = new FakeClock(1000);
    let n = 0;
    const s = new Scheduler(clock, () => n++);
    s.wakeAt(10);
    s.wakeAt(20);
    s.wakeAt(500);
    clock.advance(0);
    assert.equal(n, 1);
  });

  it('does nothing after stop', () => {
    const clock = new FakeClock(0);
    let n = 0;
    const s = new Scheduler(clock, () => n++);
    s.wakeAt(10);
    s.stop();
    s.wakeAt(20);
    clock.advance(100);
    assert.equal(n, 0);
  });
});

describe('fifo', () => {
  it('keeps order across growth and wrap-around', () => {
    const q = new Fifo<number>(2);
    const out: number[] = [];
    for (let i = 0; i < 100; i++) {
      q.push(i);
      if (i % 3 === 0) out.push(q.shift() as number);
    }
    out.push(...q.drain());
    assert.deepEqual(out, Array.from({ length: 100 }, (_, i) => i));
    assert.equal(q.size, 0);
    assert.equal(q.shift(), undefined);
  });
});
