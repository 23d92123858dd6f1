// Store faults on SQLite, answered cleanly: SQLite itself reports SQLITE_FULL on a real file (its
// max_page_count lowered to the current size, through the store's documented setMaxPageCount, on
// the service's own connection), creates answer 503 store_unavailable with Retry-After, /readyz 503,
// /healthz 200, acknowledged jobs are kept; raising the cap again, the same process recovers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { createJob, getJob, waitForStatus } from '../support/jobs.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';

const LATER = new Date(Date.now() + 3_600_000).toISOString();
/** Needs overflow pages: a job with it cannot fit in pages the file already has. */
const BIG = { blob: 'x'.repeat(40_000) };

async function expectStoreUnavailable(res: Response): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.equal(res.headers.get('retry-after'), '5');
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'store_unavailable');
  assert.match(body.error.message, /SQLITE_FULL/);
}

describe('SQLite store faults (disk full)', () => {
  let svc: TestService;
  let rx: Receiver;
  let sqlite: SqliteStore;

  before(async () => {
    rx = await startReceiver();
    svc = await startTestService({ SCHEDULER_POLL_INTERVAL_MS: '50' });
    assert.equal(svc.store.driver, 'sqlite');
    sqlite = svc.store as unknown as SqliteStore;
  });
  after(async () => {
    await svc?.cleanup();
    await rx?.close();
  });

  it('answers 503 store_unavailable while SQLite reports SQLITE_FULL, keeps what it acknowledged, and recovers without a restart', async () => {
    const kept = await createJob(svc, jobBody(`${rx.url}/kept`, { run_at: LATER, payload: BIG }));
    const delivered = await createJob(svc, jobBody(`${rx.url}/before`, { payload: { n: 1 } }));
    await waitForStatus(svc, delivered.id, 'success');

    // the disk is full: the file may not grow by one page
    const pages = sqlite.pageCount();
    assert.equal(sqlite.setMaxPageCount(pages), pages);

    await expectStoreUnavailable(await svc.post('/v1/jobs', jobBody(`${rx.url}/during`, { payload: BIG })));
    await expectStoreUnavailable(
      await svc.post('/v1/jobs/batch', { jobs: [jobBody(`${rx.url}/during`, { payload: BIG }), jobBody(`${rx.url}/during`, { payload: BIG })] }),
    );
    const ready = await svc.get('/readyz');
    assert.equal(ready.status, 503);
    const readiness = (await ready.json()) as { checks: { store: string } };
    assert.match(readiness.checks.store, /failing/);
    assert.equal((await svc.get('/healthz')).status, 200);

    // what was acknowledged is still there, and reads still answer
    assert.equal((await getJob(svc, kept.id)).status, 'scheduled');
    assert.equal((await getJob(svc, delivered.id)).status, 'success');
    assert.equal(rx.requests.filter((r) => r.url === '/during').length, 0, 'nothing refused was delivered');

    // space again: the same process takes writes and is ready
    sqlite.setMaxPageCount(1_073_741_823);
    const after = await createJob(svc, jobBody(`${rx.url}/after`, { payload: BIG }));
    await eventually(async () => (await svc.get('/readyz')).status === 200);
    await waitForStatus(svc, after.id, 'success');
    assert.equal(rx.requests.filter((r) => r.url === '/after').length, 1);
    assert.equal((await getJob(svc, kept.id)).status, 'scheduled');
  });

  it('is not ready after a failed write until a write would succeed (the readiness probe), without any create', async () => {
    sqlite.setMaxPageCount(sqlite.pageCount());
    await expectStoreUnavailable(await svc.post('/v1/jobs', jobBody(`${rx.url}/during`, { payload: BIG })));
    assert.equal((await svc.get('/readyz')).status, 503);
    assert.equal((await svc.get('/readyz')).status, 503, 'the probe still cannot write');
    sqlite.setMaxPageCount(1_073_741_823);
    assert.equal((await svc.get('/readyz')).status, 200, 'the probe wrote: ready again');
  });
});
