// The Store contract on PostgreSQL. One fresh database for the file, migrated once; each contract
// test gets a new pool over emptied tables. A database per test was measured at 0.2-0.4 s to
// create and 1.3 s to drop: over three minutes for the suite. DELETE, not TRUNCATE: on these few
// rows it takes ~1 ms where TRUNCATE (new files for 5 tables and their indexes) took ~40 ms.
import { after } from 'node:test';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { createTestDatabase, postgresAvailable } from '../support/postgres.js';
import { storeContract } from './store-contract.js';

if (await postgresAvailable('Store contract: postgres')) {
  const db = await createTestDatabase();
  const admin: PostgresStore = openPostgresStore({ connectionString: db.url, max: 1 });
  await admin.migrate();
  after(async () => {
    await admin.close();
    await db.drop();
  });

  storeContract('postgres', async () => {
    await admin.pool.query('DELETE FROM attempts; DELETE FROM jobs; DELETE FROM idempotency_keys; DELETE FROM dedupe_keys; DELETE FROM api_keys');
    const store = openPostgresStore({ connectionString: db.url, max: 4 });
    return { store, cleanup: () => store.close() };
  });
}
