// Starts a worker thread from a module beside the caller. Under tsx (tests, npm run dev) the
// caller is a .ts file and so is the worker's module, which a bare Worker cannot load: the
// worker registers tsx first.

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
