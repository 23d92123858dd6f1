// Store faults: the errors that mean "the database cannot take this write now, try again later"
// (PostgreSQL down or restarting, a disk full, a file that cannot be written), told apart from bugs
// and bad input by their typed codes, never by message text. The API answers them 503
// store_unavailable with Retry-After; /readyz answers 503 until the store takes a write again.
//
// Every store the service uses is wrapped by guardStore(): an error a driver raises is classified
// once (classifySqlite / classifyPostgres below) and rethrown as a StoreUnavailableError, and the
// wrapper's StoreHealth remembers whether the last write failed that way.

import type { Store } from './store.js';

/** Thrown by a store while it cannot write: the cause is the driver's own error. */
export class StoreUnavailableError extends Error {
  /** Stable, for code that must not depend on instanceof across module copies or threads. */
  readonly code = 'STORE_UNAVAILABLE' as const;
  /** The driver's code that made it one: SQLITE_FULL, 57P01, ECONNREFUSED, pool_connect, ... */
  readonly storeCode: string;
  constructor(storeCode: string, cause?: unknown) {
    super(`store unavailable (${storeCode})`, { cause });
    this.name = 'StoreUnavailableError';
    this.storeCode = storeCode;
  }
}

export function isStoreUnavailable(err: unknown): err is StoreUnavailableError {
  return err instanceof StoreUnavailableError || (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'STORE_UNAVAILABLE');
}

type Coded = { code?: unknown; severity?: unknown };

const codeOf = (err: unknown): string | null => {
  const code = typeof err === 'object' && err !== null ? (err as Coded).code : undefined;
  return typeof code === 'string' ? code : null;
};

/**
 * SQLite (better-sqlite3's SqliteError, or the same code carried back from the store thread):
 * the disk or quota is full, an I/O error, the lock still held after busy_timeout, a file that
 * cannot be opened or written.
 */
export function classifySqlite(err: unknown): string | null {
  const code = codeOf(err);
  if (code === null) return null;
  if (code === 'SQLITE_FULL' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_BUSY') return code;
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_BUSY')) return code;
  return null;
}

/** Socket errors on the way to the server. */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * PostgreSQL (pg's DatabaseError carries the SQLSTATE in `code` and the severity in `severity`):
 * class 08 connection exceptions, class 53 insufficient resources (53100 disk_full, 53200
 * out_of_memory, 53300 too_many_connections), 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
 * cannot_connect_now, class 58 system errors (58030 io_error), any FATAL or PANIC (the session is
 * gone, e.g. 55000 "database is not accepting connections" at connect), and socket errors. Failures
 * to get a connection at all are wrapped where they happen (see postgres/pool.ts).
 */
export function classifyPostgres(err: unknown): string | null {
  const code = codeOf(err);
  if (code !== null) {
    if (NET_CODES.has(code)) return code;
    if (/^[0-9A-Z]{5}$/.test(code)) {
      if (code.startsWith('08') || code.startsWith('53') || code.startsWith('58')) return code;
      if (code === '57P01' || code === '57P02' || code === '57P03') return code;
      const severity = (err as Coded).severity;
      if (severity === 'FATAL' || severity === 'PANIC') return code;
    }
  }
  return null;
}

/** Wraps err when it is a store fault; returns it unchanged otherwise. */
export function toStoreFault(driver: Store['driver'], err: unknown): unknown {
  if (isStoreUnavailable(err)) return err;
  const code = driver === 'sqlite' ? classifySqlite(err) : classifyPostgres(err);
  return code === null ? err : new StoreUnavailableError(code, err);
}

/** Whether the store can take writes, as its last write (or probe) showed. */
export class StoreHealth {
  /** The fault of the last failed write, null while writes succeed. */
  failure: StoreUnavailableError | null = null;
  /** When it started failing (epoch ms of the system clock, for logs). */
  since: number | null = null;

  failed(err: StoreUnavailableError): void {
    if (this.failure === null) this.since = Date.now();
    this.failure = err;
  }

  recovered(): void {
    this.failure = null;
    this.since = null;
  }
}

/**
 * Calls whose success proves the store takes writes again. A read (or SELECT 1) succeeding proves
 * little on SQLite with its disk full, so only these clear a failure (and probeWrite from /readyz).
 */
const WRITES = new Set([
  'createJobs',
  'cancelJob',
  'retryJob',
  'beginBulk',
  'bulkStep',
  'completeAttempts',
  'createApiKey',
  'revokeApiKey',
  'probeWrite',
  'createSchedule',
  'pauseSchedule',
  'resumeSchedule',
  'deleteSchedule',
  'advanceSchedule',
]);

const healthOf = new WeakMap<object, StoreHealth>();
const proxies = new WeakMap<object, Store>();

/** The health a guarded store keeps, or null for a store not wrapped by guardStore. */
export function storeHealth(store: Store): StoreHealth | null {
  return healthOf.get(store) ?? null;
}

/**
 * The store with its faults typed: every promise it returns rejects with a StoreUnavailableError
 * for a store fault (the driver's error as its cause), and the returned store's StoreHealth
 * follows its writes. Other properties (a PostgreSQL store's pool, listenDue) pass through.
 */
export function guardStore<S extends Store>(store: S, health = new StoreHealth()): S {
  if (healthOf.has(store)) return store;
  const existing = proxies.get(store);
  if (existing) return existing as S;
  const wrapped = new Map<PropertyKey, unknown>();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      let fn = wrapped.get(prop);
      if (fn === undefined) {
        const name = String(prop);
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]): unknown => {
          let out: unknown;
          try {
            out = method.apply(target, args);
          } catch (err) {
            throw note(err);
          }
          if (!(out instanceof Promise)) return out;
          return out.then(
            (v: unknown) => {
              if (WRITES.has(name)) health.recovered();
              return v;
            },
            (err: unknown) => {
              throw note(err);
            },
          );
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
  const note = (err: unknown): unknown => {
    const out = toStoreFault(store.driver, err);
    if (out instanceof StoreUnavailableError) health.failed(out);
    return out;
  };
  healthOf.set(proxy, health);
  proxies.set(store, proxy);
  return proxy;
}
