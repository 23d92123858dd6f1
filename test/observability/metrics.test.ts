// /metrics over HTTP, after real deliveries to a real receiver: each metric moves as it should.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { createJobBodySchema } from '../../src/api/schemas.js';
import { toNewJob } from '../../src/api/new-job.js';
import type { JobStatus } from '../../src/domain/job.js';
import { EventBus } from '../../src/observability/events.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { FakeClock } from '../support/fake-clock.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { gate, scrape, Scrape } from './scrape.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function service(env: Record<string, string> = {}, dir?: string): Promise<TestService> {
  const svc = await startTestService(env, {}, dir);
  cleanups.push(() => svc.cleanup());
  return svc;
}

/** A receiver that answers by path: /ok 200, /gone 410 (permanent), /flaky 500 once then 200. */
async function receiver(): Promise<Receiver> {
  let flakyCalls = 0;
  const rx = await startReceiver((req, res) => {
    if (req.url.startsWith('/gone')) res.writeHead(410);
    else if (req.url.startsWith('/flaky')) res.writeHead(++flakyCalls === 1 ? 500 : 200);
    else res.writeHead(200);
    res.end();
  });
  cleanups.push(() => rx.close());
  return rx;
}

let seq = 0;
/** Creates a job (a distinct payload each time, so content dedupe never merges two) and returns its id. */
async function createJob(svc: TestService, url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await svc.post('/v1/jobs', jobBody(url, { payload: { n: ++seq }, ...extra }));
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

async function finalStatus(svc: TestService, id: string): Promise<JobStatus> {
  return eventually(async () => {
    const job = (await (await svc.get(`/v1/jobs/${id}`)).json()) as { status: JobStatus };
    return ['success', 'failed', 'cancelled'].includes(job.status) ? job.status : null;
  });
}

describe('GET /metrics', () => {
  it('counts created jobs, completed jobs by status (success and failed), attempts and their durations', async () => {
    const rx = await receiver();
    const svc = await service();
    const ok = await createJob(svc, `${rx.url}/ok`);
    const gone = await createJob(svc, `${rx.url}/gone`);
    assert.equal(await finalStatus(svc, ok), 'success');
    assert.equal(await finalStatus(svc, gone), 'failed');

    const m = await scrape(svc.url);
    assert.equal(m.type('pulsegate_jobs_created_total'), 'counter');
    assert.equal(m.value('pulsegate_jobs_created_total'), 2);
    assert.equal(m.value('pulsegate_jobs_completed_total', { status: 'success' }), 1);
    assert.equal(m.value('pulsegate_jobs_completed_total', { status: 'failed' }), 1);
    assert.equal(m.value('pulsegate_attempts_total', { outcome: 'success', error_kind: 'none' }), 1);
    assert.equal(m.value('pulsegate_attempts_total', { outcome: 'permanent_error', error_kind: 'http' }), 1);
    assert.equal(m.value('pulsegate_attempts_total'), 2);
    assert.equal(m.value('pulsegate_retries_scheduled_total'), 0);

    assert.equal(m.type('pulsegate_delivery_duration_seconds'), 'histogram');
    assert.equal(m.value('pulsegate_delivery_duration_seconds_count', { outcome: 'success' }), 1);
    assert.equal(m.value('pulsegate_delivery_duration_seconds_count', { outcome: 'permanent_error' }), 1);
    assert.ok(m.value('pulsegate_delivery_duration_seconds_sum') > 0);
    assert.equal(m.value('pulsegate_delivery_duration_seconds_bucket', { outcome: 'success', le: '+Inf' }), 1);
    assert.equal(m.value('pulsegate_scheduler_lag_seconds_count'), 2);
    assert.ok(m.value('pulsegate_store_write_duration_seconds_count', { op: 'create' }) >= 1);
    assert.ok(m.value('pulsegate_store_write_duration_seconds_count', { op: 'engine.write' }) >= 1);
    assert.ok(m.value('pulsegate_store_write_rows_total', { op: 'create' }) >= 2);
    assert.equal(m.value('pulsegate_store_errors_total'), 0);

    // the store's counts: read on this (first) scrape, after both jobs ended
    assert.equal(m.type('pulsegate_jobs_by_status'), 'gauge');
    assert.equal(m.value('pulsegate_jobs_by_status', { status: 'success' }), 1);
    assert.equal(m.value('pulsegate_jobs_by_status', { status: 'failed' }), 1);
    for (const status of ['scheduled', 'queued', 'running', 'retrying', 'cancelled']) {
      assert.equal(m.value('pulsegate_jobs_by_status', { status }), 0, status);
    }

    // labels stay low-cardinality: no job id, no URL, no tenant anywhere
    for (const needle of [ok, gone, rx.url, '127.0.0.1', '/ok', 'tenant']) {
      assert.ok(!m.text.includes(needle), `the scrape mentions ${needle}`);
    }
  });

  it('counts a retry and the attempts of both outcomes when a delivery fails once then succeeds', async () => {
    const rx = await receiver();
    const svc = await service();
    const id = await createJob(svc, `${rx.url}/flaky`, { retry: { max_attempts: 3, base_delay_ms: 0, max_delay_ms: 0 } });
    assert.equal(await finalStatus(svc, id), 'success');

    const m = await scrape(svc.url);
    assert.equal(m.value('pulsegate_attempts_total', { outcome: 'retryable_error', error_kind: 'http' }), 1);
    assert.equal(m.value('pulsegate_attempts_total', { outcome: 'success' }), 1);
    assert.equal(m.value('pulsegate_retries_scheduled_total'), 1);
    assert.equal(m.value('pulsegate_jobs_completed_total', { status: 'success' }), 1);
    assert.equal(m.value('pulsegate_jobs_completed_total', { status: 'failed' }), 0);
    assert.equal(m.value('pulsegate_delivery_duration_seconds_count'), 2);
  });

  it('shows attempts in flight and the memory queue depth while deliveries are slow, and both back at 0 after', async () => {
    const held = gate();
    const rx = await startReceiver(async (_req, res) => {
      await held.wait;
      res.writeHead(200);
      res.end();
    });
    cleanups.push(async () => {
      held.open();
      await rx.close();
    });
    const svc = await service({ WORKER_CONCURRENCY: '1' });
    const ids = [await createJob(svc, `${rx.url}/slow`), await createJob(svc, `${rx.url}/slow`), await createJob(svc, `${rx.url}/slow`)];

    await rx.waitFor(1);
    const during = await eventually(async () => {
      const m = await scrape(svc.url);
      return m.value('pulsegate_queue_depth') === 2 ? m : null;
    });
    assert.equal(during.value('pulsegate_jobs_in_flight'), 1);
    assert.equal(during.value('pulsegate_worker_concurrency'), 1);
    assert.equal(during.value('pulsegate_queue_capacity'), 10000);
    assert.equal(during.value('pulsegate_jobs_completed_total'), 0);

    held.open();
    for (const id of ids) assert.equal(await finalStatus(svc, id), 'success');
    const m = await scrape(svc.url);
    assert.equal(m.value('pulsegate_jobs_in_flight'), 0);
    assert.equal(m.value('pulsegate_queue_depth'), 0);
    assert.equal(m.value('pulsegate_jobs_completed_total', { status: 'success' }), 3);
    assert.equal(m.value('pulsegate_delivery_duration_seconds_count', { outcome: 'success' }), 3);
  });

  it('counts idempotent replays and dedupe hits, which create no job', async () => {
    const rx = await receiver();
    const svc = await service();
    const body = jobBody(`${rx.url}/ok`, { payload: { order: 'idem' } });
    assert.equal((await svc.post('/v1/jobs', body, { 'idempotency-key': 'order-1' })).status, 201);
    assert.equal((await svc.post('/v1/jobs', body, { 'idempotency-key': 'order-1' })).status, 200);
    const dup = jobBody(`${rx.url}/ok`, { payload: { order: 'dup' }, dedupe_key: 'order-2' });
    assert.equal((await svc.post('/v1/jobs', dup)).status, 201);
    assert.equal((await svc.post('/v1/jobs', dup)).status, 200);
    assert.equal((await svc.post('/v1/jobs', dup)).status, 200);

    const m = await scrape(svc.url);
    assert.equal(m.value('pulsegate_jobs_created_total'), 2);
    assert.equal(m.value('pulsegate_idempotent_replays_total'), 1);
    assert.equal(m.value('pulsegate_dedupe_hits_total'), 2);
    assert.deepEqual(m.find('pulsegate_dedupe_hits_total').map((s) => s.labels.source).sort(), ['cache', 'store']);
  });

  it('counts rate-limit waits, and the jobs released to the store because their wait was too long', async () => {
    const rx = await receiver();
    const svc = await service();
    for (let i = 0; i < 6; i++) await createJob(svc, `${rx.url}/ok`, { rate_limit: { rps: 1, burst: 1 } });

    const m = await eventually(async () => {
      const s = await scrape(svc.url);
      return s.value('pulsegate_ratelimit_released_total') >= 1 ? s : null;
    });
    assert.ok(m.value('pulsegate_ratelimit_waits_total') >= 2, 'jobs behind the first waited');
    assert.ok(m.value('pulsegate_ratelimit_waits_total') > m.value('pulsegate_ratelimit_released_total'), 'some waited in memory');
    assert.ok(m.value('pulsegate_queue_parked') >= 1, 'a waiting job is parked in the memory queue');
    assert.ok(m.value('pulsegate_queue_depth') >= m.value('pulsegate_queue_parked'));
  });

  it('shows the jobs held in memory until their run_at, and counts them in the queue depth', async () => {
    const rx = await receiver();
    const svc = await service();
    for (let i = 0; i < 3; i++) await createJob(svc, `${rx.url}/ok`, { delay_ms: 1500 });
    const m = await scrape(svc.url);
    assert.equal(m.value('pulsegate_queue_ahead'), 3);
    assert.ok(m.value('pulsegate_queue_depth') >= 3);
    await eventually(async () => (rx.requests.length >= 3 ? true : null), 5000);
    const after = await eventually(async () => {
      const s = await scrape(svc.url);
      return s.value('pulsegate_queue_ahead') === 0 ? s : null;
    });
    assert.equal(after.value('pulsegate_queue_depth'), 0);
  });

  it('counts the leases recovered at start from a process that was killed, and delivers those jobs again', async () => {
    const rx = await receiver();
    const dir = mkdtempSync(join(tmpdir(), 'pulsegate-metrics-'));
    // a previous process claimed a job, started its attempt and died: the row is running, leased to it
    const store = openSqliteStore({ path: join(dir, 'pulsegate.db') });
    await store.migrate();
    const now = Date.now();
    const body = createJobBodySchema.parse(jobBody(`${rx.url}/ok`, { payload: { n: 'held' } }));
    const job = toNewJob(body, JSON.stringify(body.payload), null, now, { dedupeWindowMs: 0, idempotencyTtlMs: 1000 });
    await store.createJobs([job], now);
    assert.equal((await store.claimDue('dead-process', now, 60_000, 10)).length, 1);
    await store.markRunning([job.id], 'dead-process', now);
    await store.close();

    const svc = await service({}, dir);
    assert.equal(await finalStatus(svc, job.id), 'success');
    const m = await scrape(svc.url);
    assert.equal(m.value('pulsegate_leases_recovered_total'), 1);
    assert.equal(m.value('pulsegate_jobs_completed_total', { status: 'success' }), 1);
    assert.equal(m.value('pulsegate_jobs_created_total'), 0, 'created by the previous process');
  });

  it('keeps each service in its own registry, never the global one, with Node process metrics', async () => {
    const rx = await receiver();
    const a = await service();
    const b = await service();
    await createJob(a, `${rx.url}/ok`);
    await createJob(a, `${rx.url}/ok`);
    await createJob(b, `${rx.url}/ok`);

    const [ma, mb] = [await scrape(a.url), await scrape(b.url)];
    assert.equal(ma.value('pulsegate_jobs_created_total'), 2);
    assert.equal(mb.value('pulsegate_jobs_created_total'), 1);
    const global = await globalRegistry.getMetricsAsJSON();
    assert.deepEqual(global.filter((mt) => mt.name.startsWith('pulsegate_')), []);

    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(ma.find(name).length > 0, `${name} is exposed`);
    }
    assert.equal(ma.value('pulsegate_build_info'), 1);
  });
});

describe('createMetrics', () => {
  const quiet = { queued: 0, parked: 0, ahead: 0, inFlight: 0, capacity: 10, concurrency: 2 };

  async function sqlite() {
    const dir = mkdtempSync(join(tmpdir(), 'pulsegate-metrics-'));
    const store = openSqliteStore({ path: join(dir, 'pulsegate.db') });
    await store.migrate();
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return store;
  }

  it('counts jobs per status in the store at most once per max age, however often it is scraped', async () => {
    const store = await sqlite();
    let queries = 0;
    const count = store.countByStatus.bind(store);
    store.countByStatus = () => {
      queries++;
      return count();
    };
    const clock = new FakeClock();
    const metrics = createMetrics({ events: new EventBus(), engineStats: () => quiet, store, clock, statusCountsMaxAgeMs: 5000 });
    const read = async () => Scrape.parse(await metrics.render());

    assert.equal((await read()).value('pulsegate_jobs_by_status', { status: 'queued' }), 0);
    const body = createJobBodySchema.parse(jobBody('http://127.0.0.1:9/x'));
    const job = toNewJob(body, '{}', null, clock.now(), { dedupeWindowMs: 0, idempotencyTtlMs: 1000 });
    await store.createJobs([job], clock.now());
    for (let i = 0; i < 5; i++) await read();
    clock.advance(4999);
    assert.equal((await read()).value('pulsegate_jobs_by_status', { status: 'queued' }), 0, 'the cached count is served');
    assert.equal(queries, 1);

    clock.advance(1);
    const scrapes = await Promise.all([read(), read(), read()]);
    assert.equal(queries, 2, 'concurrent scrapes share one query');
    for (const s of scrapes) assert.equal(s.value('pulsegate_jobs_by_status', { status: 'queued' }), 1);
  });

  it('keeps the last store counts and counts a store error when counting fails', async () => {
    const store = await sqlite();
    const count = store.countByStatus.bind(store);
    let fail = false;
    store.countByStatus = () => (fail ? Promise.reject(new Error('disk I/O error')) : count());
    const clock = new FakeClock();
    const events = new EventBus();
    const seen: string[] = [];
    events.on((e) => {
      if (e.type === 'store.error') seen.push(e.op);
    });
    const metrics = createMetrics({ events, engineStats: () => quiet, store, clock, statusCountsMaxAgeMs: 1000 });
    const body = createJobBodySchema.parse(jobBody('http://127.0.0.1:9/x'));
    await store.createJobs([toNewJob(body, '{}', null, clock.now(), { dedupeWindowMs: 0, idempotencyTtlMs: 1000 })], clock.now());
    assert.equal(Scrape.parse(await metrics.render()).value('pulsegate_jobs_by_status', { status: 'queued' }), 1);

    fail = true;
    clock.advance(1000);
    await metrics.render();
    const m = Scrape.parse(await metrics.render());
    assert.equal(m.value('pulsegate_jobs_by_status', { status: 'queued' }), 1);
    assert.equal(m.value('pulsegate_store_errors_total', { op: 'count_by_status' }), 1);
    assert.deepEqual(seen, ['count_by_status']);
  });

  it('adds a tenant label to the job counters only when tenantLabels is on, and never to histograms', async () => {
    const store = await sqlite();
    const emitAll = (events: EventBus) => {
      events.emit({ type: 'job.created', job_id: 'j1', tenant_id: 'acme', status: 'queued', run_at: 0 });
      events.emit({ type: 'attempt.started', job_id: 'j1', tenant_id: 'acme', attempt: 1, lateness_ms: 5 });
      events.emit({
        type: 'attempt.finished',
        job_id: 'j1',
        tenant_id: 'acme',
        attempt: 1,
        outcome: 'retryable_error',
        error_kind: 'timeout',
        status_code: null,
        duration_ms: 5000,
        next_status: 'retrying',
        next_attempt_at: 1,
      });
      events.emit({ type: 'ratelimit.wait', tenant_id: 'acme', wait_ms: 10, released: false });
    };

    const plainBus = new EventBus();
    const plain = createMetrics({ events: plainBus, engineStats: () => quiet, store, clock: new FakeClock() });
    emitAll(plainBus);
    const p = Scrape.parse(await plain.render());
    assert.ok(!p.text.includes('tenant'), 'no tenant label by default');
    assert.equal(p.value('pulsegate_attempts_total', { outcome: 'retryable_error', error_kind: 'timeout' }), 1);

    const bus = new EventBus();
    const labelled = createMetrics({ events: bus, engineStats: () => quiet, store, clock: new FakeClock(), tenantLabels: true });
    emitAll(bus);
    const m = Scrape.parse(await labelled.render());
    assert.equal(m.value('pulsegate_jobs_created_total', { tenant: 'acme' }), 1);
    assert.equal(m.value('pulsegate_attempts_total', { tenant: 'acme', outcome: 'retryable_error', error_kind: 'timeout' }), 1);
    assert.equal(m.value('pulsegate_retries_scheduled_total', { tenant: 'acme' }), 1);
    assert.equal(m.value('pulsegate_ratelimit_waits_total', { tenant: 'acme' }), 1);
    for (const s of m.series.filter((x) => x.name.startsWith('pulsegate_delivery_duration') || x.name.startsWith('pulsegate_scheduler_lag'))) {
      assert.equal(s.labels.tenant, undefined, s.name);
    }

    plain.close();
    emitAll(plainBus);
    assert.equal(Scrape.parse(await plain.render()).value('pulsegate_jobs_created_total'), 1, 'close() stops observing');
  });
});
