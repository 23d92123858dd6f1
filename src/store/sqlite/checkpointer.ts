// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
// crosses the threshold: copying pages and fsyncing the database stalls the event loop for several
// milliseconds (measured here: commit p99 5 ms with it, 0.25 ms without). The main connection turns
// it off, and a worker thread with its own connection runs a PASSIVE checkpoint every interval:
// it never blocks writers, and its fsyncs happen on the worker's thread.
//
// A PASSIVE checkpoint copies the frames that existed when it began. Under a steady write load
// more frames arrive while it copies, so the log is never wholly copied and SQLite never starts it
// over: the WAL file grows without end (seen: 10.7 GB after 800,000 creates). So each checkpoint
// reports the log's length, and the store finishes the last few frames itself (see SqliteStore).

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 5000 });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
const checkpoint = () => {
  try {
    parentPort.postMessage({ log: db.pragma('wal_checkpoint(PASSIVE)')[0].log });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  intervalMs?: number;
  onError?: (message: string) => void;
  /** After each checkpoint, with the number of frames in the WAL as the worker saw it. */
  onCheckpoint?: (logFrames: number) => void;
}

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(path: string, o: CheckpointerOptions = {}) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const onError = o.onError ?? (() => undefined);
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, intervalMs: o.intervalMs ?? 250, driver } });
    this.worker.on('message', (m: { error?: string; log?: number }) => {
      if (m.error) onError(m.error);
      else if (m.log !== undefined) o.onCheckpoint?.(m.log);
    });
    this.worker.on('error', (err) => onError(err.message));
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Runs a last checkpoint and closes the worker's connection. */
  async stop(): Promise<void> {
    this.worker.ref(); // keep the event loop alive until the worker has closed its connection
    this.worker.postMessage('stop');
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.worker.terminate();
  }
}
