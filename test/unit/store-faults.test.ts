// Which driver errors are store faults (503 store_unavailable): by typed code, never by message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyPostgres, classifySqlite, guardStore, isStoreUnavailable, StoreUnavailableError, storeHealth, toStoreFault } from '../../src/store/faults.js';
import type { Store } from '../../src/store/store.js';

const coded = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error('whatever the text says'), { code, ...extra });

describe('store faults', () => {
  it('classifies SQLite codes', () => {
    for (const c of ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_BUSY', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_READONLY_DBMOVED']) {
      assert.equal(classifySqlite(coded(c)), c);
    }
    for (const c of ['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_ERROR', 'SQLITE_MISMATCH']) assert.equal(classifySqlite(coded(c)), null);
    assert.equal(classifySqlite(new Error('SQLITE_FULL: database or disk is full')), null, 'never by message');
    assert.equal(classifySqlite(new RangeError('limit')), null);
  });

  it('classifies PostgreSQL codes and socket errors', () => {
    for (const c of ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P02', '57P03', '08006', '08001', '53100', '53300', '53200', '58030']) {
      assert.equal(classifyPostgres(coded(c, { severity: 'ERROR' })), c);
    }
    assert.equal(classifyPostgres(coded('55000', { severity: 'FATAL' })), '55000', 'a FATAL ends the session');
    for (const c of ['23505', '40001', '22P02', '42P01', '57014']) assert.equal(classifyPostgres(coded(c, { severity: 'ERROR' })), null);
    assert.equal(classifyPostgres(new Error('Connection terminated')), null, 'never by message');
  });

  it('wraps faults with the cause and passes other errors through', () => {
    const full = coded('SQLITE_FULL');
    const out = toStoreFault('sqlite', full);
    assert.ok(out instanceof StoreUnavailableError);
    assert.equal(out.storeCode, 'SQLITE_FULL');
    assert.equal(out.cause, full);
    assert.ok(isStoreUnavailable(out));
    const other = coded('SQLITE_CONSTRAINT');
    assert.equal(toStoreFault('sqlite', other), other);
  });

  it('guards a store: faults typed, health follows failed and succeeding writes', async () => {
    let fail = true;
    const raw = {
      driver: 'sqlite',
      ping: async () => undefined,
      createJobs: async () => {
        if (fail) throw coded('SQLITE_FULL');
        return [];
      },
      getJob: async () => null,
    } as unknown as Store;
    const store = guardStore(raw);
    assert.equal(guardStore(raw), store, 'one guard per store');
    const health = storeHealth(store);
    assert.ok(health);
    await assert.rejects(store.createJobs([], 0), (e: unknown) => isStoreUnavailable(e));
    assert.equal(health.failure?.storeCode, 'SQLITE_FULL');
    await store.getJob('x');
    assert.ok(health.failure, 'a read does not prove writes work');
    fail = false;
    await store.createJobs([], 0);
    assert.equal(health.failure, null);
  });
});
