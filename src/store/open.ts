// Which driver a Config selects: DATABASE_URL (postgres:// or postgresql://) for PostgreSQL,
// otherwise SQLite at DATABASE_PATH (on a worker thread with SQLITE_THREAD). The PostgreSQL driver
// (and `pg`, 65-165 ms to load here) is imported only when selected: a SQLite process, and every
// test that starts one, does not pay for it.

import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import { ThreadedSqliteStore } from './sqlite/threaded-store.js';
import { withWriteLock, type WriteLock } from './sqlite/write-lock.js';
import type { Store } from './store.js';

/**
 * `writeLock`: shared with the other connection of this process to the same SQLite file (the engine
 * thread's), so their writers wait for each other without SQLite's busy sleeps. Then one of the two
 * runs the WAL checkpoints, on its own connection and on `checkpointClock` (the engine thread),
 * and the other none (see LockedCheckpointer). The two share SQLITE_CACHE_MB, half each.
 */
export async function openConfiguredStore(config: Config, o: { writeLock?: WriteLock; checkpointClock?: Clock } = {}): Promise<Store> {
  if (config.DATABASE_URL !== undefined) {
    const { openPostgresStore } = await import('./postgres/postgres-store.js');
    return openPostgresStore({
      connectionString: config.DATABASE_URL,
      max: config.PG_POOL_MAX,
      statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
      notify: config.PG_NOTIFY,
      // the lanes hold across instances: one instance at a time delivers a destination
      laneLeases: true,
    });
  }
  const opts = { path: config.DATABASE_PATH, synchronous: config.SQLITE_SYNCHRONOUS, cacheSizeMb: config.SQLITE_CACHE_MB };
  if (config.SQLITE_THREAD) return new ThreadedSqliteStore(opts);
  if (!o.writeLock) return openSqliteStore(opts);
  const lock = o.writeLock;
  // SQLITE_CACHE_MB is the process's page cache: each of the two connections gets half
  const store = openSqliteStore({
    ...opts,
    cacheSizeMb: config.SQLITE_CACHE_MB / 2,
    checkpoints: o.checkpointClock ? { lock, clock: o.checkpointClock } : 'elsewhere',
  });
  return withWriteLock(store, lock);
}

/** The database, for logs: a PostgreSQL URL without its user and password. */
export function databaseLabel(config: Config): string {
  if (config.DATABASE_URL === undefined) return config.DATABASE_PATH;
  try {
    const u = new URL(config.DATABASE_URL);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return 'postgres (unparsable URL)';
  }
}
