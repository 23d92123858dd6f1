import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.PORT, 8080);
    assert.equal(c.HOST, '127.0.0.1');
    assert.equal(c.DATABASE_PATH, './pulsegate.db');
    assert.equal(c.QUEUE_CAPACITY, 10000);
    assert.equal(c.WORKER_CONCURRENCY, 512);
    assert.equal(c.DESTINATION_MAX_IN_FLIGHT, 64);
    assert.equal(c.TENANT_MAX_IN_FLIGHT, 256);
    assert.equal(c.CIRCUIT_FAILURE_THRESHOLD, 5);
    assert.equal(c.CIRCUIT_COOLDOWN_MS, 5000);
    assert.equal(c.CIRCUIT_COOLDOWN_MAX_MS, 300_000);
    assert.equal(c.SCHEDULER_POLL_INTERVAL_MS, 5000);
    assert.equal(c.DEDUPE_WINDOW_SECONDS, 3600);
    assert.equal(c.IDEMPOTENCY_TTL_SECONDS, 86400);
    assert.equal(c.MAX_PAYLOAD_BYTES, 262144);
    assert.equal(c.SHUTDOWN_TIMEOUT_MS, 30000);
    assert.equal(c.LOG_LEVEL, 'info');
    assert.equal(c.RETRY_AFTER_MAX_SECONDS, 3600);
    assert.equal(c.JOB_RETENTION_DAYS, 30);
    assert.equal(c.SQLITE_SYNCHRONOUS, 'FULL');
    assert.equal(c.SQLITE_CACHE_MB, 4);
    assert.ok(Object.isFrozen(c));
  });

  it('selects PostgreSQL only with a postgres:// or postgresql:// DATABASE_URL, and never shows the URL in an error', () => {
    const c = loadConfig({});
    assert.equal(c.DATABASE_URL, undefined);
    assert.equal(c.PG_POOL_MAX, 10);
    assert.equal(c.PG_STATEMENT_TIMEOUT_MS, 5000);
    assert.equal(c.PG_NOTIFY, true);
    for (const url of ['postgres://u:p@db:5432/pulsegate', 'postgresql://db/pulsegate']) {
      assert.equal(loadConfig({ DATABASE_URL: url }).DATABASE_URL, url);
    }
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@db/x', PG_POOL_MAX: '0' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL \(value hidden\)/);
        assert.match(err.message, /PG_POOL_MAX/);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      },
    );
  });

  it('names every bad variable in one error', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', WORKER_CONCURRENCY: '0', LOG_LEVEL: 'loud' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const name of ['PORT', 'WORKER_CONCURRENCY', 'LOG_LEVEL']) assert.match(err.message, new RegExp(name));
        return true;
      },
    );
  });

  it('stops the service at start with a message naming the variable', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: new URL('../..', import.meta.url).pathname,
      env: { ...process.env, QUEUE_CAPACITY: '-5', DATABASE_PATH: '/nonexistent/never-created.db' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /QUEUE_CAPACITY/);
  });
});
