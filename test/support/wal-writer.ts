// A worker thread's writer for the two-writer WAL test (test/store/write-lock.test.ts): its own
// connection, opened as the engine thread opens its own (it runs the WAL checkpoints, finishing
// under the shared write lock), creating jobs without pause for `ms` once it has said it is ready.
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../../src/clock.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { WriteLock, withWriteLock } from '../../src/store/sqlite/write-lock.js';
import { writeWithoutPause } from './write-load.js';

const { path, lock, walLimitBytes, ms } = workerData as { path: string; lock: SharedArrayBuffer; walLimitBytes: number; ms: number };
const shared = new WriteLock(lock);
const store = withWriteLock(
  openSqliteStore({ path, synchronous: 'NORMAL', walLimitBytes, checkpointIntervalMs: 20, checkpoints: { lock: shared, clock: systemClock } }),
  shared,
);
parentPort?.postMessage('ready');
const written = await writeWithoutPause(store, ms);
await store.close();
parentPort?.postMessage(written);
