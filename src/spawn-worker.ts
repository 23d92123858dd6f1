// Starts a worker thread from a module beside the caller. Under tsx (tests, npm run dev) the
// caller is a .ts file and so is the worker's module, which a bare Worker cannot load: the
// worker registers tsx first. withSemiSpace gives a worker's isolate a young generation of its own
// size, which neither the process's flag nor a Worker's resourceLimits can.

import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';

/** `from` is the caller's import.meta.url; `name` the worker module's file name without extension. */
export function spawnWorker(from: string, name: string, workerData: unknown): Worker {
  const ext = from.endsWith('.ts') ? '.ts' : '.js';
  const entry = new URL(`./${name}${ext}`, from);
  return ext === '.ts'
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`, {
        eval: true,
        workerData,
      })
    : new Worker(entry, { workerData });
}

/**
 * Creates a worker whose isolate is configured with a semi-space of `mb`: the flag is set while the
 * isolate is made (on the worker's thread, before it reports online) and put back then. Only the
 * heap of an isolate created meanwhile reads it; the main isolate's was sized at start.
 */
export function withSemiSpace(mb: number, spawn: () => Worker): Worker {
  const flag = /^--max-semi-space-size=(\d+)$/;
  const own = process.execArgv.map((a) => flag.exec(a)?.[1]).find((v) => v !== undefined) ?? '0';
  setFlagsFromString(`--max-semi-space-size=${mb}`);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    setFlagsFromString(`--max-semi-space-size=${own}`);
  };
  try {
    const worker = spawn();
    worker.once('online', restore);
    worker.once('error', restore);
    worker.once('exit', restore);
    return worker;
  } catch (err) {
    restore();
    throw err;
  }
}
