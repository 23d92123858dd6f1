// The write lock between the threads that hold connections to one SQLite file: a writer on one
// thread waits for the other's write to end, and both connections' writes all land.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../src/spawn-worker.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { WriteLock, withWriteLock } from '../../src/store/sqlite/write-lock.js';
import { writeWithoutPause } from '../support/write-load.js';
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

  it('keeps the WAL bounded with a writer on each thread: the other thread finishes the checkpoint under the lock', async () => {
    // SQLite starts the WAL over only in a transaction that began on a wholly copied log. A store
    // that finishes the checkpoint between its own transactions finds the other thread in the
    // middle of one (it was waiting for the lock): without the checkpoint under the lock, this
    // grew the WAL to 190 MB in 1.5 s with a limit of 1 MB and never started it over.
    const dir = mkdtempSync(join(tmpdir(), 'pulsegate-lock-'));
    const path = join(dir, 'x.db');
    const wal = `${path}-wal`;
    const limit = 1 << 20;
    const ms = 1500;
    const lock = new WriteLock();
    // the main thread's connection, as in ENGINE_THREAD mode: it checkpoints nothing itself
    const store = withWriteLock(openSqliteStore({ path, synchronous: 'NORMAL', walLimitBytes: limit, checkpointIntervalMs: 20, checkpoints: 'elsewhere' }), lock);
    let worker: Worker | null = null;
    try {
      await store.migrate();
      worker = spawnWorker(new URL('../support/wal-writer.ts', import.meta.url).href, 'wal-writer', { path, lock: lock.buffer, walLimitBytes: limit, ms });
      const said = (w: Worker) => new Promise<unknown>((resolve, reject) => w.once('message', resolve).once('error', reject));
      await said(worker);
      const theirs = said(worker);
      let largest = 0;
      let startedOver = 0;
      let previous = 0;
      let written = await writeWithoutPause(store, ms, () => {
        const size = statSync(wal).size;
        if (size < previous) startedOver++;
        previous = size;
        largest = Math.max(largest, size);
      });
      written += (await theirs) as number;
      assert.ok(startedOver >= 1, `the WAL never started over (largest ${largest} bytes)`);
      assert.ok(largest <= 32 * limit, `the WAL reached ${largest} bytes with a limit of ${limit}`);
      const counts = Object.values(await store.countByStatus()) as number[];
      assert.equal(counts.reduce((a, b) => a + b, 0), written, 'every committed job is there');
    } finally {
      await worker?.terminate();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
