// The Store contract on PostgreSQL. One fresh database for the file, migrated once, and one pool
// that every contract test's store shares; each test starts from emptied tables. A database per
// test was measured at 0.2-0.4 s to create and 1.3 s to drop: over three minutes for the suite. A
// pool per test forks new server backends whose catalog caches start cold, CPU that the rest of
// the suite (run two files at a time) feels. DELETE, not TRUNCATE: on these few rows it takes
// ~1 ms where TRUNCATE (new files for 5 tables and their indexes) took ~40 ms.
import { after } from 'node:test';
import { createPool } from '../../src/store/postgres/pool.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { createTestDatabase, postgresAvailable } from '../support/postgres.js';
import { storeContract } from './store-contract.js';

if (await postgresAvailable('Store contract: postgres')) {
  const db = await createTestDatabase();
  const pool = createPool({ connectionString: db.url, max: 4 });
  await new PostgresStore(pool).migrate();
  after(async () => {
    await pool.end();
    await db.drop();
  });

  storeContract('postgres', async () => {
    await pool.query('DELETE FROM attempts; DELETE FROM jobs; DELETE FROM idempotency_keys; DELETE FROM dedupe_keys; DELETE FROM bulk_operations; DELETE FROM api_keys; DELETE FROM schedules');
    // the pool outlives the test's store: it is the file's, ended after the last test
    return { store: new PostgresStore(pool), cleanup: async () => undefined };
  });
}
