// GET /v1/jobs: newest first, filters, limit bounds, and a cursor that visits every job exactly once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { assertJobShape, createJob, expectError, LATER, waitForStatus, walk, type JobView, type PageView } from './helpers.js';

const TENANTS = ['alpha', 'beta', 'gamma'] as const;
const TYPES = ['order.created', 'order.paid'] as const;
const COUNT = 120;

interface Made {
  id: string;
  tenant: string;
  type: string;
  status: string;
}

describe('GET /v1/jobs', () => {
  let svc: TestService;
  let receiver: Receiver;
  /** Every job, in creation order. */
  const made: Made[] = [];
  const newestFirst = (filter: (m: Made) => boolean = () => true) => made.filter(filter).map((m) => m.id).reverse();

  async function page(query: string): Promise<PageView> {
    const res = await svc.get(`/v1/jobs${query}`);
    assert.equal(res.status, 200, query);
    return (await res.json()) as PageView;
  }

  before(async () => {
    receiver = await startReceiver();
    svc = await startTestService();
    for (let i = 0; i < COUNT; i++) {
      const tenant = TENANTS[i % 3] as string;
      const type = TYPES[i % 2] as string;
      const job = await createJob(svc, jobBody(`${receiver.url}/never`, { tenant_id: tenant, type, payload: { n: i }, ...LATER }));
      made.push({ id: job.id, tenant, type, status: 'scheduled' });
    }
    for (const m of made.filter((_, i) => i % 10 === 0)) {
      const res = await svc.post(`/v1/jobs/${m.id}/cancel`, {});
      assert.equal(res.status, 200);
      m.status = 'cancelled';
    }
    for (let i = 0; i < 3; i++) {
      const job = await createJob(svc, jobBody(`${receiver.url}/now`, { tenant_id: 'alpha', type: 'order.created', payload: { now: i } }));
      made.push({ id: job.id, tenant: 'alpha', type: 'order.created', status: 'success' });
    }
    for (const m of made.slice(-3)) await waitForStatus(svc, m.id, 'success');
  });
  after(async () => {
    await svc?.cleanup();
    await receiver?.close();
  });

  it('lists jobs newest first', async () => {
    const p = await page('?limit=1000');
    assert.deepEqual(p.data.map((j) => j.id), newestFirst());
    assert.equal(p.next_cursor, null);
    const ids = p.data.map((j) => j.id);
    assert.deepEqual(ids, [...ids].sort().reverse(), 'ids sort by creation time');
    for (const j of p.data) assertJobShape(j);
  });

  it('answers {data, next_cursor} and nothing else', async () => {
    const p = await page('?limit=1');
    assert.deepEqual(Object.keys(p).sort(), ['data', 'next_cursor']);
    assert.equal(p.data.length, 1);
    assert.equal(typeof p.next_cursor, 'string');
  });

  it('returns 50 jobs when no limit is given', async () => {
    const p = await page('');
    assert.equal(p.data.length, 50);
    assert.deepEqual(p.data.map((j) => j.id), newestFirst().slice(0, 50));
    assert.notEqual(p.next_cursor, null);
  });

  it('accepts limit 1 and limit 1000', async () => {
    assert.equal((await page('?limit=1')).data.length, 1);
    assert.equal((await page('?limit=1000')).data.length, made.length);
  });

  it('filters by tenant_id', async () => {
    for (const tenant of TENANTS) {
      const p = await page(`?tenant_id=${tenant}&limit=1000`);
      assert.deepEqual(p.data.map((j) => j.id), newestFirst((m) => m.tenant === tenant));
      assert.ok(p.data.every((j) => j.tenant_id === tenant));
    }
  });

  it('filters by type', async () => {
    const p = await page('?type=order.paid&limit=1000');
    assert.deepEqual(p.data.map((j) => j.id), newestFirst((m) => m.type === 'order.paid'));
  });

  it('filters by status', async () => {
    for (const status of ['scheduled', 'cancelled', 'success']) {
      const p = await page(`?status=${status}&limit=1000`);
      assert.deepEqual(p.data.map((j) => j.id), newestFirst((m) => m.status === status), status);
      assert.ok(p.data.every((j) => j.status === status));
    }
    assert.deepEqual((await page('?status=failed')).data, []);
  });

  it('combines filters', async () => {
    const p = await page('?tenant_id=beta&type=order.created&status=cancelled&limit=1000');
    const expected = newestFirst((m) => m.tenant === 'beta' && m.type === 'order.created' && m.status === 'cancelled');
    assert.ok(expected.length > 0);
    assert.deepEqual(p.data.map((j) => j.id), expected);
  });

  it('answers an empty page with next_cursor null for a tenant without jobs', async () => {
    assert.deepEqual(await page('?tenant_id=nobody'), { data: [], next_cursor: null });
  });

  it('walks every job exactly once, newest first, with a cursor', async () => {
    const pages = await walk(svc, '/v1/jobs', 7);
    const ids = pages.flatMap((p) => p.data.map((j) => j.id));
    assert.equal(pages.length, Math.ceil(made.length / 7));
    assert.ok(pages.slice(0, -1).every((p) => p.data.length === 7), 'every page but the last is full');
    assert.equal(new Set(ids).size, ids.length, 'no job twice');
    assert.deepEqual(ids, newestFirst());
  });

  it('walks a filtered list exactly once with a cursor', async () => {
    const pages = await walk(svc, '/v1/jobs?tenant_id=gamma&status=scheduled', 7);
    assert.deepEqual(pages.flatMap((p) => p.data.map((j) => j.id)), newestFirst((m) => m.tenant === 'gamma' && m.status === 'scheduled'));
  });

  it('ends a walk on the last job when the jobs fill the pages exactly', async () => {
    const total = made.length; // 123 = 3 * 41
    const pages = await walk(svc, '/v1/jobs', total / 3);
    assert.equal(pages.length, 3);
    assert.ok(pages.every((p) => p.data.length === total / 3));
  });

  it('neither repeats nor skips a job when jobs are created during a walk', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let i = 0;
    do {
      const p: PageView = await page(`?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      seen.push(...p.data.map((j) => j.id));
      cursor = p.next_cursor;
      // a newer job arrives between pages; it belongs before the walk's start and must not appear
      await createJob(svc, jobBody(`${receiver.url}/during`, { tenant_id: 'during', payload: { i: i++ }, ...LATER }));
    } while (cursor !== null);
    assert.deepEqual(seen, newestFirst());
  });

  const badQueries: [string, string, string][] = [
    ['rejects limit 0', '?limit=0', 'querystring.limit'],
    ['rejects limit 1001', '?limit=1001', 'querystring.limit'],
    ['rejects a negative limit', '?limit=-1', 'querystring.limit'],
    ['rejects a fractional limit', '?limit=2.5', 'querystring.limit'],
    ['rejects a limit that is not a number', '?limit=ten', 'querystring.limit'],
    ['rejects an unknown status', '?status=done', 'querystring.status'],
    ['rejects a tenant_id outside the tenant charset', '?tenant_id=a%20b', 'querystring.tenant_id'],
    ['rejects an empty cursor', '?cursor=', 'querystring.cursor'],
    ['rejects an unknown query parameter', '?tenant=alpha', 'querystring.tenant'],
  ];
  for (const [rule, query, field] of badQueries) {
    it(`${rule} with 400 validation_failed`, async () => {
      const err = await expectError(await svc.get(`/v1/jobs${query}`), 400, 'validation_failed');
      const fields = (err.details?.fields ?? []).map((f) => f.field);
      assert.ok(fields.some((f) => f === field || f.startsWith(`${field}.`)), `expected ${field} among ${JSON.stringify(fields)}`);
    });
  }

  it('names every bad query parameter at once', async () => {
    const err = await expectError(await svc.get('/v1/jobs?limit=0&status=done'), 400, 'validation_failed');
    const fields = (err.details?.fields ?? []).map((f) => f.field);
    assert.ok(fields.includes('querystring.limit') && fields.includes('querystring.status'), JSON.stringify(fields));
  });
});

describe('GET /v1/jobs/{id}', () => {
  let svc: TestService;
  let job: JobView;
  before(async () => {
    svc = await startTestService();
    job = await createJob(svc, jobBody('http://127.0.0.1:9/one', LATER));
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('returns the job', async () => {
    const res = await svc.get(`/v1/jobs/${job.id}`);
    assert.equal(res.status, 200);
    const got = (await res.json()) as JobView;
    assertJobShape(got);
    assert.deepEqual(got, job);
  });

  const missing: [string, string][] = [
    ['an unknown job id', '/v1/jobs/01900000-0000-7000-8000-000000000000'],
    ['a path-traversal id', '/v1/jobs/..%2F..%2Fetc%2Fpasswd'],
    ['a path-traversal id with dots only', '/v1/jobs/..%2F..'],
    ['an id that is not a UUID', '/v1/jobs/not-a-job'],
    ['a UUID that is not version 7', '/v1/jobs/3d6f4a5e-1b2c-4d3e-8f90-123456789abc'],
    ['an id with SQL in it', `/v1/jobs/${encodeURIComponent("' OR 1=1 --")}`],
    ['an id longer than any job id', `/v1/jobs/${'a'.repeat(500)}`],
  ];
  for (const [what, path] of missing) {
    it(`answers 404 not_found for ${what}`, async () => {
      await expectError(await svc.get(path), 404, 'not_found');
    });
  }
});
