// The write lock between the threads that hold connections to one SQLite file: a writer on one
// thread waits for the other's write to end, and both connections' writes all land.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { WriteLock, withWriteLock } from '../../src/store/sqlite/write-lock.js';
import { newJob } from './store-contract.js';

describe('the SQLite write lock between threads', () => {
  it('makes a writer wait until the other thread has finished its write', async () => {
    const lock = new WriteLock();
    const flags = new Int32Array(new SharedArrayBuffer(8)); // [0] held by the other thread, [1] its write done
    // the other thread: takes the lock, says so, works 150 ms, marks its write done, lets go
    const worker = new Worker(
      `const { lock, flags } = require('node:worker_threads').workerData;
       const cell = new Int32Array(lock, 0, 1), f = new Int32Array(flags);
       while (Atomics.compareExchange(cell, 0, 0, 1) !== 0) Atomics.wait(cell, 0, 1);
       Atomics.store(f, 0, 1); Atomics.notify(f, 0);
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150);
       Atomics.store(f, 1, 1);
       if (Atomics.sub(cell, 0, 1) !== 1) { Atomics.store(cell, 0, 0); Atomics.notify(cell, 0, 1); }`,
      { eval: true, workerData: { lock: lock.buffer, flags: flags.buffer } },
    );
    try {
      for (let i = 0; i < 500 && Atomics.load(flags, 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(Atomics.load(flags, 0), 1, 'the other thread holds the lock');
      assert.equal(lock.run(() => Atomics.load(flags, 1)), 1, 'this write ran only after the other finished');
    } finally {
      await worker.terminate();
    }
  });

  it('passes every call through to the store, writes under the lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulsegate-lock-'));
    const lock = new WriteLock();
    const store = withWriteLock(openSqliteStore({ path: join(dir, 'x.db'), synchronous: 'NORMAL' }), lock);
    try {
      await store.migrate();
      const [out] = await store.createJobs([newJob(Date.now())], Date.now());
      assert.equal(out?.kind, 'created');
      assert.equal((await store.countByStatus()).queued, 1);
      assert.equal(lock.run(() => 'free again'), 'free again', 'the lock was let go after the write');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
