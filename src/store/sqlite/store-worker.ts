// The worker-thread side of ThreadedSqliteStore: owns the SQLite connection and answers calls.
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

interface Call {
  id: number;
  method: string;
  args: unknown[];
}

const port = parentPort;
if (!port) throw new Error('store-worker runs in a worker thread');
const store = openSqliteStore((workerData as { opts: SqliteStoreOptions }).opts) as unknown as Record<
  string,
  (...args: unknown[]) => Promise<unknown>
>;

port.on('message', (call: Call) => {
  const fn = store[call.method];
  if (typeof fn !== 'function') {
    port.postMessage({ id: call.id, error: { name: 'TypeError', message: `no store method ${call.method}` } });
    return;
  }
  fn.apply(store, call.args).then(
    (result) => port.postMessage({ id: call.id, result }),
    (err: unknown) => {
      const e = err as { name?: string; message?: string; code?: string };
      port.postMessage({ id: call.id, error: { name: e?.name ?? 'Error', message: e?.message ?? String(err), code: e?.code } });
    },
  );
});
