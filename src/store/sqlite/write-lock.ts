// One writer at a time between the threads of a process that each hold a SQLite connection to the
// same file (the engine thread, see src/engine/thread/). SQLite alone would make the second writer
// sleep in its busy handler, 1, 2, 5, 10 ms and so on, with its thread's event loop held the whole
// time; here it waits on a lock in shared memory and wakes the moment the other commits.
//
// The lock is held for the synchronous part of a write call only: better-sqlite3 runs the
// statement or transaction, commits, and returns a promise (which may still wait for an fsync of
// the WAL: that wait holds no lock). Calls not listed wait in SQLite's busy handler as before.

import type { Store } from '../store.js';

const WRITE_CALLS = new Set<string>([
  'createJobs',
  'claimDue',
  'markRunning',
  'completeAttempts',
  'release',
  'renewLeases',
  'recoverLeases',
  'promoteDue',
  'cancelJob',
  'retryJob',
  'bulkStep',
  'pruneTerminal',
  'pruneExpiredKeys',
]);

/** Past this a waiter goes on without the lock and lets SQLite's busy_timeout decide (a holder that died). */
const MAX_WAIT_MS = 5000;

export class WriteLock {
  private readonly cell: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.cell = new Int32Array(buffer, 0, 1);
  }

  /** Runs fn (synchronous) as the only writer of this process. */
  run<R>(fn: () => R): R {
    const held = this.acquire();
    try {
      return fn();
    } finally {
      if (held) this.release();
    }
  }

  // A futex-style mutex (Drepper, "Futexes Are Tricky"): 0 free, 1 held, 2 held with a waiter, so
  // an uncontended release costs no wake-up call.
  private acquire(): boolean {
    let c = Atomics.compareExchange(this.cell, 0, 0, 1);
    if (c === 0) return true;
    const until = Date.now() + MAX_WAIT_MS;
    do {
      if (c === 2 || Atomics.compareExchange(this.cell, 0, 1, 2) !== 0) {
        const left = until - Date.now();
        if (left <= 0) return false;
        Atomics.wait(this.cell, 0, 2, left);
      }
      c = Atomics.compareExchange(this.cell, 0, 0, 2);
    } while (c !== 0);
    return true;
  }

  private release(): void {
    if (Atomics.sub(this.cell, 0, 1) !== 1) {
      Atomics.store(this.cell, 0, 0);
      Atomics.notify(this.cell, 0, 1);
    }
  }
}

/** The store with its write calls taken under the lock (a synchronous driver: SqliteStore). */
export function withWriteLock<S extends Store>(store: S, lock: WriteLock): S {
  const wrapped = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || !WRITE_CALLS.has(prop) || typeof value !== 'function') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const method = value as (...a: unknown[]) => unknown;
        fn = (...args: unknown[]) => lock.run(() => method.apply(target, args));
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}
