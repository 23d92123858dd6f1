// A real PostgreSQL for tests: a fresh database per test file (or per test that asks for one),
// named pulsegate_test_<pid>_<random>, dropped WITH (FORCE) after. The server is 127.0.0.1:5432,
// user postgres, trust auth (PG_TEST_URL overrides the server). Without a server the tests fail
// under CI=true and are skipped, saying why, elsewhere.

import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';

export const PG_SERVER_URL = process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** The URL of one database on the server (the benchmark uses these helpers too: bench/lib/postgres.ts). */
export function urlFor(database: string, server = PG_SERVER_URL): string {
  const u = new URL(server);
  u.pathname = `/${database}`;
  return u.toString();
}

/** fn with a client connected to the server's maintenance database, closed after. */
export async function onServer<T>(fn: (client: pg.Client) => Promise<T>, server = PG_SERVER_URL): Promise<T> {
  const client = new pg.Client({ connectionString: server, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `pulsegate_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await onServer((c) => c.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: urlFor(name),
    drop: () => onServer((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

async function reachable(): Promise<string | null> {
  try {
    await onServer((c) => c.query('SELECT 1'));
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  }
}

/**
 * True when PostgreSQL answers. Otherwise registers one test that fails under CI (a CI without its
 * database must not pass by skipping) or is skipped with the reason, and returns false.
 */
export async function postgresAvailable(what: string): Promise<boolean> {
  const error = await reachable();
  if (error === null) return true;
  const reason = `PostgreSQL not reachable at ${new URL(PG_SERVER_URL).host} (${error})`;
  const ci = process.env.CI;
  if (ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0') {
    test(`${what}: PostgreSQL is reachable (CI=true)`, () => {
      throw new Error(`${reason}; CI runs the PostgreSQL tests, start the server (.ci/run does)`);
    });
  } else {
    test(`${what}`, { skip: `${reason}; set CI=true to make this a failure` }, () => undefined);
  }
  return false;
}
