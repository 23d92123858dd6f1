// Bulk retry and cancel by filter over real HTTP: filters, dry runs, limits, refusals with stable
// codes that change nothing, tenant keys limited to their tenant, and a key shared by two calls.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { generateKey } from '../../src/auth/keys.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { assertNames, createJob, expectError, LATER, type BulkView, type JobView } from './helpers.js';


const acme = generateKey().key;
const globex = generateKey().key;
const admin = generateKey().key;
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('bulk commands', () => {
  let svc: TestService;
  let gone: Receiver;
  let n = 0;

  before(async () => {
    // answers 410: a permanent failure, so each job is in the DLQ after one attempt
    gone = await startReceiver((_req, res) => {
      res.writeHead(410);
      res.end('gone');
    });
    svc = await startTestService({ API_KEYS: `acme:${acme}, globex:${globex}, *:${admin}` });
  });
  after(async () => {
    await svc.cleanup();
    await gone.close();
  });
  beforeEach(async () => {
    // each test starts with no job left to act on: every job cancelled (running ones included, which
    // keep their status when their attempt ends), failed ones too
    for (let round = 0; round < 3; round++) {
      const page = await svc.store.listJobs({}, 1000, null);
      for (const j of page.data) {
        if (['scheduled', 'queued', 'running', 'retrying', 'failed'].includes(j.status)) {
          if (j.status === 'failed') await svc.store.retryJob(j.id, Date.now());
          await svc.store.cancelJob(j.id, Date.now());
        }
      }
    }
  });

  async function failedJob(tenant: string, extra: Record<string, unknown> = {}, path = '/hook'): Promise<JobView> {
    const job = await createJob(svc, jobBody(`${gone.url}${path}`, { tenant_id: tenant, payload: { n: ++n }, retry: { max_attempts: 1 }, ...extra }), bearer(admin));
    return eventually(async () => {
      const j = await svc.store.getJob(job.id);
      return j?.status === 'failed' ? job : undefined;
    });
  }

  async function pendingJob(tenant: string, extra: Record<string, unknown> = {}): Promise<JobView> {
    return createJob(svc, jobBody(`${gone.url}/later`, { tenant_id: tenant, payload: { n: ++n }, ...LATER, ...extra }), bearer(admin));
  }

  async function call(path: string, body: unknown, key = admin, headers: Record<string, string> = {}): Promise<BulkView> {
    const res = await svc.post(path, body, { ...bearer(key), ...headers });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text) as BulkView;
  }

  const statusOf = async (id: string) => (await svc.store.getJob(id))?.status;

  describe('POST /v1/dlq/retry', () => {
    it('retries only the failed jobs matching every filter given', async () => {
      const hit = await failedJob('acme', { type: 'order.created' });
      const otherType = await failedJob('acme', { type: 'invoice.paid' });
      const otherTenant = await failedJob('globex', { type: 'order.created' });
      const pending = await pendingJob('acme', { type: 'order.created' });
      const res = await call('/v1/dlq/retry', { tenant_id: 'acme', type: 'order.created', destination_origin: `${gone.url}/`, error_kind: 'http', status_code: 410 });
      assert.deepEqual(res, { action: 'retry', dry_run: false, jobs: 1, destinations: [{ origin: gone.url, jobs: 1 }], destinations_truncated: false });
      assert.notEqual(await statusOf(hit.id), 'failed');
      assert.equal(await statusOf(otherType.id), 'failed');
      assert.equal(await statusOf(otherTenant.id), 'failed');
      assert.equal(await statusOf(pending.id), 'scheduled');
    });

    it('selects by when jobs failed: failed_after inclusive, failed_before exclusive', async () => {
      const early = await failedJob('acme');
      const cut = new Date(((await svc.store.getJob(early.id))?.completed_at ?? 0) + 1).toISOString();
      const late = await eventually(async () => {
        const j = await failedJob('acme');
        return ((await svc.store.getJob(j.id))?.completed_at ?? 0) >= Date.parse(cut) ? j : undefined;
      });
      const dry = await call('/v1/dlq/retry', { failed_before: cut, dry_run: true });
      assert.equal(dry.jobs, 1);
      assert.equal((await call('/v1/dlq/retry', { failed_after: cut })).jobs, 1);
      assert.equal(await statusOf(early.id), 'failed');
      assert.notEqual(await statusOf(late.id), 'failed');
    });

    it('answers a dry run with what it would retry and changes nothing', async () => {
      const a = await failedJob('acme', {}, '/a');
      await failedJob('acme', {}, '/b');
      const res = await call('/v1/dlq/retry', { dry_run: true });
      assert.deepEqual(res, { action: 'retry', dry_run: true, jobs: 2, destinations: [{ origin: gone.url, jobs: 2 }], destinations_truncated: false });
      assert.equal(await statusOf(a.id), 'failed');
    });

    it('retries at most limit jobs, oldest first', async () => {
      const first = await failedJob('acme');
      const second = await failedJob('acme');
      assert.equal((await call('/v1/dlq/retry', { limit: 1 })).jobs, 1);
      assert.notEqual(await statusOf(first.id), 'failed');
      assert.equal(await statusOf(second.id), 'failed');
    });

    it('retries each job once when two calls share an Idempotency-Key at the same time', async () => {
      const jobs = [];
      for (let i = 0; i < 6; i++) jobs.push(await failedJob('acme'));
      const [a, b] = await Promise.all([
        call('/v1/dlq/retry', { tenant_id: 'acme' }, admin, { 'idempotency-key': 'together' }),
        call('/v1/dlq/retry', { tenant_id: 'acme' }, admin, { 'idempotency-key': 'together' }),
      ]);
      assert.equal(a.jobs, 6);
      assert.equal(b.jobs, 6);
      // each job was queued once: it failed again (the receiver still answers 410) after one new attempt
      for (const j of jobs) {
        await eventually(async () => (await statusOf(j.id)) === 'failed');
        assert.equal((await svc.store.listAttempts(j.id)).length, 2, 'one original attempt and one after the replay');
      }
    });

    it('scopes an Idempotency-Key to the tenant: another tenant may use the same key', async () => {
      await failedJob('acme');
      await failedJob('globex');
      assert.equal((await call('/v1/dlq/retry', {}, acme, { 'idempotency-key': 'shared' })).jobs, 1);
      assert.equal((await call('/v1/dlq/retry', {}, globex, { 'idempotency-key': 'shared' })).jobs, 1);
    });
  });

  describe('POST /v1/jobs/cancel', () => {
    it('cancels scheduled, queued and retrying jobs matching the filters, and nothing else', async () => {
      const hit = await pendingJob('acme', { type: 'order.created' });
      const otherType = await pendingJob('acme', { type: 'invoice.paid' });
      const failed = await failedJob('acme', { type: 'order.created' });
      const res = await call('/v1/jobs/cancel', { tenant_id: 'acme', type: 'order.created' });
      assert.deepEqual(res, { action: 'cancel', dry_run: false, jobs: 1, destinations: [{ origin: gone.url, jobs: 1 }], destinations_truncated: false });
      assert.equal(await statusOf(hit.id), 'cancelled');
      assert.equal(await statusOf(otherType.id), 'scheduled');
      assert.equal(await statusOf(failed.id), 'failed');
    });

    it('counts without cancelling in a dry run, and honours statuses and limit', async () => {
      const a = await pendingJob('acme');
      const b = await pendingJob('acme');
      assert.equal((await call('/v1/jobs/cancel', { statuses: ['queued', 'retrying'], dry_run: true })).jobs, 0);
      assert.equal((await call('/v1/jobs/cancel', { statuses: ['scheduled'], dry_run: true })).jobs, 2);
      assert.equal(await statusOf(a.id), 'scheduled');
      assert.equal((await call('/v1/jobs/cancel', { limit: 1 })).jobs, 1);
      assert.equal(await statusOf(a.id), 'cancelled');
      assert.equal(await statusOf(b.id), 'scheduled');
    });
  });

  describe('tenant keys', () => {
    it('limits a tenant key to its own jobs when it names no tenant', async () => {
      const mine = await failedJob('acme');
      const theirs = await failedJob('globex');
      const minePending = await pendingJob('acme');
      const theirsPending = await pendingJob('globex');
      // (cancel first: the retried job would be queued, and so cancellable)
      assert.equal((await call('/v1/jobs/cancel', {}, acme)).jobs, 1);
      assert.equal(await statusOf(minePending.id), 'cancelled');
      assert.equal(await statusOf(theirsPending.id), 'scheduled');
      assert.equal((await call('/v1/dlq/retry', {}, acme)).jobs, 1);
      assert.notEqual(await statusOf(mine.id), 'failed');
      assert.equal(await statusOf(theirs.id), 'failed');
    });

    it("refuses a tenant key naming another tenant with 403 forbidden, and changes nothing", async () => {
      const theirs = await failedJob('globex');
      const theirsPending = await pendingJob('globex');
      await expectError(await svc.post('/v1/dlq/retry', { tenant_id: 'globex' }, bearer(acme)), 403, 'forbidden');
      await expectError(await svc.post('/v1/jobs/cancel', { tenant_id: 'globex', dry_run: true }, bearer(acme)), 403, 'forbidden');
      assert.equal(await statusOf(theirs.id), 'failed');
      assert.equal(await statusOf(theirsPending.id), 'scheduled');
    });

    it('answers 401 without a key', async () => {
      await expectError(await svc.post('/v1/dlq/retry', {}), 401, 'unauthorized');
      await expectError(await svc.post('/v1/jobs/cancel', {}), 401, 'unauthorized');
    });
  });

  describe('refusals', () => {
    const bad: [string, Record<string, unknown>, string][] = [
      ['an unknown field', { tenant: 'acme' }, 'body.tenant'],
      ['an origin with a path', { destination_origin: 'https://example.com/hooks' }, 'body.destination_origin'],
      ['an origin that is not http(s)', { destination_origin: 'ftp://example.com' }, 'body.destination_origin'],
      ['a time that is not RFC 3339', { failed_after: 'yesterday' }, 'body.failed_after'],
      ['failed_after not before failed_before', { failed_after: '2026-01-02T00:00:00Z', failed_before: '2026-01-01T00:00:00Z' }, 'body.failed_before'],
      ['an unknown error kind', { error_kind: 'gremlins' }, 'body.error_kind'],
      ['a status code out of range', { status_code: 99 }, 'body.status_code'],
      ['a limit of 0', { limit: 0 }, 'body.limit'],
      ['a limit that is not an integer', { limit: 1.5 }, 'body.limit'],
      ['dry_run that is not a boolean', { dry_run: 'yes' }, 'body.dry_run'],
      ['a bad tenant id', { tenant_id: 'a b' }, 'body.tenant_id'],
    ];
    for (const [what, body, field] of bad) {
      it(`refuses ${what} with 422 validation_failed naming ${field}, and retries nothing`, async () => {
        const f = await failedJob('acme');
        const err = await expectError(await svc.post('/v1/dlq/retry', body, bearer(admin)), 422, 'validation_failed');
        assertNames(err, field);
        assert.equal(await statusOf(f.id), 'failed');
      });
    }

    it('refuses cancel statuses it does not cover (running, terminal) with 422', async () => {
      const err = await expectError(await svc.post('/v1/jobs/cancel', { statuses: ['running'] }, bearer(admin)), 422, 'validation_failed');
      assertNames(err, 'body.statuses');
      await expectError(await svc.post('/v1/jobs/cancel', { statuses: [] }, bearer(admin)), 422, 'validation_failed');
    });

    it('refuses a body that is not JSON, or not an object, with 400 validation_failed', async () => {
      const f = await failedJob('acme');
      await expectError(await svc.post('/v1/dlq/retry', '{"limit":', bearer(admin)), 400, 'validation_failed');
      await expectError(await svc.post('/v1/dlq/retry', '[1]', bearer(admin)), 400, 'validation_failed');
      await expectError(await svc.post('/v1/jobs/cancel', '', bearer(admin)), 400, 'validation_failed');
      assert.equal(await statusOf(f.id), 'failed');
    });

    it('refuses an over-long Idempotency-Key with 400 validation_failed', async () => {
      const err = await expectError(await svc.post('/v1/dlq/retry', {}, { ...bearer(admin), 'idempotency-key': 'k'.repeat(256) }), 400, 'validation_failed');
      assertNames(err, 'headers.idempotency-key');
    });
  });
});
