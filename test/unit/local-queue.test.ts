// The local queue with a fake clock: held states, capacity and the hold-ahead timer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Held } from '../../src/engine/held.js';
import { LocalQueue } from '../../src/engine/local-queue.js';
import { claimedJob } from '../support/claimed.js';
import { FakeClock } from '../support/fake-clock.js';

function setup(capacity = 3) {
  const clock = new FakeClock(1000);
  const ready: Held[] = [];
  const q = new LocalQueue(clock, capacity, (h) => ready.push(h));
  return { clock, q, ready };
}

describe('local queue', () => {
  it('hands a due job on at once and holds a later one until its run_at', () => {
    const { clock, q, ready } = setup();
    q.add(claimedJob({ id: 'now', run_at: 1000 }));
    q.add(claimedJob({ id: 'later', run_at: 1500 }));
    assert.deepEqual(ready.map((h) => h.job.id), ['now']);
    assert.deepEqual(q.stats(), { queued: 2, ahead: 1, inFlight: 0 });
    clock.advance(499);
    assert.equal(ready.length, 1);
    clock.advance(1);
    assert.deepEqual(ready.map((h) => h.job.id), ['now', 'later']);
    assert.equal(q.stats().ahead, 0);
  });

  it('counts held jobs and reservations against capacity, not attempts in flight', () => {
    const { q, ready } = setup(3);
    q.add(claimedJob());
    q.add(claimedJob());
    assert.equal(q.reserve(5), 1, 'only the room left');
    assert.equal(q.room, 0);
    q.unreserve(1);
    q.started(ready[0] as Held);
    assert.equal(q.room, 2);
    assert.equal(q.inFlight, 1);
    q.finished(ready[0] as Held);
    assert.equal(q.inFlight, 0);
    assert.equal(q.size, 1);
  });

  it('drops a cancelled job that waits; marks one in flight so it finishes as its last', () => {
    const { q, ready, clock } = setup();
    q.add(claimedJob({ id: 'w' }));
    q.add(claimedJob({ id: 'f' }));
    q.add(claimedJob({ id: 'a', run_at: 2000 }));
    q.started(ready[1] as Held);
    assert.equal(q.forget('w')?.job.id, 'w', 'returned: its lane must let go of it');
    assert.equal(q.forget('f'), null);
    assert.equal(ready[1]?.cancelled, true);
    assert.equal(q.forget('a'), null, 'held ahead: nothing for a lane to do');
    clock.advance(5000);
    assert.equal(ready.length, 2, 'a cancelled job held ahead never comes due');
    assert.equal(q.stats().queued, 0);
  });

  it('stop gives back everything not in flight; abandon lets go of what is', () => {
    const { q, ready } = setup();
    q.add(claimedJob({ id: 'x' }));
    q.add(claimedJob({ id: 'y' }));
    q.add(claimedJob({ id: 'z', run_at: 9000 }));
    q.started(ready[0] as Held);
    assert.deepEqual(q.stop().sort(), ['y', 'z']);
    assert.deepEqual(q.abandonInFlight(), ['x']);
    assert.equal(ready[0]?.abandoned, true);
  });
});
