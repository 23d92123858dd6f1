// The same contract, with the SQLite connection on a worker thread.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ThreadedSqliteStore } from '../../src/store/sqlite/threaded-store.js';
import { storeContract } from './store-contract.js';

storeContract('sqlite on a worker thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulsegate-sqlite-thread-'));
  const store = new ThreadedSqliteStore({ path: join(dir, 'jobs.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
