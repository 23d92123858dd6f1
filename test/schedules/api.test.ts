// /v1/schedules over real HTTP: what it refuses (with stable codes, nothing written), the life of a
// schedule (pause, resume, delete), listing, and tenant isolation.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKey } from '../../src/auth/keys.js';
import { captureLogs, expectError } from '../security/helpers.js';
import { FakeClock } from '../support/fake-clock.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';

interface ScheduleView {
  id: string;
  tenant_id: string;
  status: string;
  cron: string;
  time_zone: string;
  next_tick_at: string | null;
  missed_ticks: string;
  catch_up_limit: number;
  job: Record<string, unknown>;
}

describe('the schedules API', () => {
  const acme = generateKey().key;
  const globex = generateKey().key;
  const admin = generateKey().key;
  const logs = captureLogs('info');
  let svc: TestService;
  let clock: FakeClock;
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const job = (tenant = 'acme') => jobBody('http://127.0.0.1:9/hook', { tenant_id: tenant });
  const post = (path: string, body: unknown, key = admin) => svc.post(path, body, as(key));
  const get = (path: string, key = admin) => svc.request(path, { headers: as(key) });
  const del = (path: string, key = admin) => svc.request(path, { method: 'DELETE', headers: as(key) });

  before(async () => {
    clock = new FakeClock(Date.parse('2026-06-01T12:00:10Z'));
    svc = await startTestService(
      { API_KEYS: `acme:${acme}, globex:${globex}, *:${admin}`, SCHEDULE_CATCH_UP_LIMIT: '3', SCHEDULER_POLL_INTERVAL_MS: '3600000' },
      { clock, logger: logs.logger },
    );
  });
  after(async () => {
    await svc.cleanup();
  });

  async function count(): Promise<number> {
    return (await svc.store.listSchedules({}, 1000, null)).data.length;
  }

  it('creates a schedule with its defaults and its first tick, and reads it back', async () => {
    const res = await post('/v1/schedules', { cron: '0 */6 * * *', time_zone: 'Europe/Berlin', job: job() }, acme);
    assert.equal(res.status, 201);
    const s = (await res.json()) as ScheduleView;
    assert.equal(res.headers.get('location'), `/v1/schedules/${s.id}`);
    assert.equal(s.tenant_id, 'acme');
    assert.equal(s.status, 'active');
    assert.equal(s.missed_ticks, 'catch_up');
    assert.equal(s.catch_up_limit, 3);
    // 12:00:10Z is 14:00:10 in Berlin (CEST): the next 6-hourly tick is 18:00 local
    assert.equal(s.next_tick_at, '2026-06-01T16:00:00.000Z');
    assert.deepEqual((s.job.destination as Record<string, unknown>).method, 'POST');
    const again = (await (await get(`/v1/schedules/${s.id}`, acme)).json()) as ScheduleView;
    assert.deepEqual(again, s);
  });

  it('refuses a bad cron, an unknown time zone and an end before the start with 400 and a stable code, writing nothing', async () => {
    const before = await count();
    await expectError(await post('/v1/schedules', { cron: '61 * * * *', job: job() }), 400, 'invalid_cron_expression');
    await expectError(await post('/v1/schedules', { cron: '* * * *', job: job() }), 400, 'invalid_cron_expression');
    await expectError(await post('/v1/schedules', { cron: '0 * * * *', time_zone: 'Mars/Olympus_Mons', job: job() }), 400, 'unknown_time_zone');
    await expectError(
      await post('/v1/schedules', { cron: '0 * * * *', job: job(), start_at: '2026-07-01T00:00:00Z', end_at: '2026-06-30T00:00:00Z' }),
      400,
      'invalid_schedule_window',
    );
    // no tick between now and end_at
    await expectError(await post('/v1/schedules', { cron: '0 0 1 1 *', job: job(), end_at: '2026-07-01T00:00:00Z' }), 400, 'invalid_schedule_window');
    assert.equal(await count(), before);
  });

  it('validates the template with the job schema and rules, and refuses run_at in it', async () => {
    const before = await count();
    const bad = await expectError(await post('/v1/schedules', { cron: '0 * * * *', job: { ...job(), destination: { url: 'ftp://x' } } }), 422, 'validation_failed');
    assert.match(bad.message, /body\.job\.destination\.url/);
    await expectError(await post('/v1/schedules', { cron: '0 * * * *', job: { ...job(), run_at: '2026-07-01T00:00:00Z' } }), 422, 'validation_failed');
    await expectError(await post('/v1/schedules', { cron: '0 * * * *', job: job(), extra: 1 }), 422, 'validation_failed');
    await expectError(await post('/v1/schedules', { cron: '0 * * * *', job: job(), catch_up_limit: 0 }), 422, 'validation_failed');
    assert.equal(await count(), before);
  });

  it('pauses, resumes and deletes a schedule, answering 409 for a change its status does not allow, and logs each', async () => {
    const s = (await (await post('/v1/schedules', { cron: '*/5 * * * *', job: job() })).json()) as ScheduleView;
    const paused = (await (await post(`/v1/schedules/${s.id}/pause`, {})).json()) as ScheduleView;
    assert.equal(paused.status, 'paused');
    assert.equal(paused.next_tick_at, null);
    await expectError(await post(`/v1/schedules/${s.id}/pause`, {}), 409, 'conflict');
    clock.advance(3_600_000);
    const resumed = (await (await post(`/v1/schedules/${s.id}/resume`, {})).json()) as ScheduleView;
    assert.equal(resumed.status, 'active');
    // from now on: the hour paused is skipped
    assert.equal(resumed.next_tick_at, '2026-06-01T13:05:00.000Z');
    await expectError(await post(`/v1/schedules/${s.id}/resume`, {}), 409, 'conflict');
    const gone = await del(`/v1/schedules/${s.id}`);
    assert.equal(gone.status, 204);
    await expectError(await get(`/v1/schedules/${s.id}`), 404, 'not_found');
    await expectError(await del(`/v1/schedules/${s.id}`), 404, 'not_found');
    await expectError(await get('/v1/schedules/not-an-id'), 404, 'not_found');
    const actions = logs.records().filter((r) => r.event === 'schedule.changed' && r.schedule_id === s.id).map((r) => r.action);
    assert.deepEqual(actions, ['created', 'paused', 'resumed', 'deleted']);
  });

  it('lists schedules newest first, a page at a time, a tenant key seeing only its own', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) mine.push(((await (await post('/v1/schedules', { cron: '0 0 * * *', job: job('globex') }, globex)).json()) as ScheduleView).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const page = (await (await get(`/v1/schedules?limit=2${cursor ? `&cursor=${cursor}` : ''}`, globex)).json()) as { data: ScheduleView[]; next_cursor: string | null };
      seen.push(...page.data.map((s) => s.id));
      assert.ok(page.data.every((s) => s.tenant_id === 'globex'));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, [...mine].reverse());
    const all = (await (await get('/v1/schedules?limit=1000')).json()) as { data: ScheduleView[] };
    assert.ok(all.data.some((s) => s.tenant_id === 'acme') && all.data.some((s) => s.tenant_id === 'globex'));
    const paused = (await (await get('/v1/schedules?status=paused')).json()) as { data: ScheduleView[] };
    assert.ok(paused.data.every((s) => s.status === 'paused'));
  });

  it("keeps a tenant out of another tenant's schedules", async () => {
    const theirs = (await (await post('/v1/schedules', { cron: '0 0 * * *', job: job('globex') }, globex)).json()) as ScheduleView;
    await expectError(await post('/v1/schedules', { cron: '0 0 * * *', job: job('globex') }, acme), 403, 'forbidden');
    await expectError(await get('/v1/schedules?tenant_id=globex', acme), 403, 'forbidden');
    await expectError(await get(`/v1/schedules/${theirs.id}`, acme), 404, 'not_found');
    await expectError(await post(`/v1/schedules/${theirs.id}/pause`, {}, acme), 404, 'not_found');
    await expectError(await post(`/v1/schedules/${theirs.id}/resume`, {}, acme), 404, 'not_found');
    await expectError(await del(`/v1/schedules/${theirs.id}`, acme), 404, 'not_found');
    assert.equal((await svc.store.getSchedule(theirs.id))?.status, 'active');
  });

  it('counts the ticks it creates in pulsegate_schedule_ticks_total', async () => {
    const s = (await (await post('/v1/schedules', { cron: '*/10 * * * * *', job: job() })).json()) as ScheduleView;
    const next = Date.parse(s.next_tick_at as string);
    clock.set(next);
    await svc.ticker?.settled();
    clock.set(next + 10_000);
    await svc.ticker?.settled();
    await post(`/v1/schedules/${s.id}/pause`, {});
    const metrics = await (await get('/metrics')).text();
    const created = /pulsegate_schedule_ticks_total\{outcome="created"\} (\d+)/.exec(metrics);
    assert.ok(created && Number(created[1]) >= 2, metrics.slice(0, 200));
    const lines = await svc.store.listJobs({ tenant_id: 'acme' }, 1000, null);
    assert.equal(lines.data.filter((j) => j.idempotency_key?.startsWith(`schedule:${s.id}:`)).length, 2);
  });
});
