// The driver's connection pool and the few helpers every module uses: a query with typed rows, and
// a transaction on one client. Epoch-ms columns are BIGINT; their values are parsed to numbers here
// (per pool, not through pg's global type registry), which is exact below 2^53.

import pg from 'pg';
import { StoreUnavailableError } from '../faults.js';

export interface PgPoolOptions {
  /** postgres://user:password@host:port/database */
  connectionString: string;
  /** Connections this process opens at most (PG_POOL_MAX). */
  max?: number;
  /** The server cancels a statement running longer than this (PG_STATEMENT_TIMEOUT_MS); 0 = no limit. */
  statementTimeoutMs?: number;
  applicationName?: string;
  /** How long getting a connection may take before the call fails as store_unavailable (PG_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
}

const INT8_OID = 20;
const parseInt8 = (text: string): number => Number(text);

const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * A pool whose failures to hand out a connection (refused, reset, timed out, the server refusing
 * the session) are StoreUnavailableError: pg gives some of them no code at all (its pool's connect
 * timeout, "Connection terminated"), so they are typed here, where it is known what failed.
 * pool.query() gets its connection through connect() too.
 */
class FaultTypedPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(
    callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): Promise<pg.PoolClient> | void {
    if (callback) {
      super.connect((err, client, done) => callback(err ? connectFault(err) : err, client, done));
      return;
    }
    return super.connect().catch((err: unknown) => {
      throw connectFault(err);
    });
  }
}

function connectFault(err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  return new StoreUnavailableError(typeof code === 'string' ? code : 'pool_connect', err);
}

export function createPool(opts: PgPoolOptions): pg.Pool {
  const pool = new FaultTypedPool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    statement_timeout: opts.statementTimeoutMs && opts.statementTimeoutMs > 0 ? opts.statementTimeoutMs : undefined,
    application_name: opts.applicationName ?? 'pulsegate',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    types,
  });
  // An idle client whose server went away emits 'error' on the pool; without a listener it would
  // crash the process. The next query gets a fresh connection (or fails and says why).
  pool.on('error', () => undefined);
  // pg-pool listens for errors only on idle clients: a checked-out client whose server went away
  // between two queries (pg_terminate_backend, a restart) emits 'error' with nobody listening,
  // which would crash the process. Its queries fail on their own (a store fault) and a broken
  // client is not taken back into the pool.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** A query: plain text, or a named (server-side prepared, per connection) statement. */
export interface Sql {
  text: string;
  /** Set for the hot statements: parsed and planned once per connection. */
  name?: string;
}

export type Queryable = pg.Pool | pg.PoolClient;

export async function query<R extends pg.QueryResultRow>(db: Queryable, sql: Sql, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  return db.query<R>(sql.name ? { name: sql.name, text: sql.text, values } : { text: sql.text, values });
}

/** Runs fn in a transaction on one client: COMMIT when it resolves, ROLLBACK when it throws. */
export async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection itself failed: do not hand it out again
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
