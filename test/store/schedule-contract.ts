// The schedules part of the Store contract (src/store/schedules.ts), run by storeContract for every driver.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { uuidv7 } from 'uuidv7';
import type { NewSchedule } from '../../src/domain/schedule.js';
import type { Store } from '../../src/store/store.js';
import { FakeClock } from '../support/fake-clock.js';

const LEASE_MS = 30_000;
const MINUTE = 60_000;

export function newSchedule(now: number, over: Partial<NewSchedule> = {}): NewSchedule {
  return {
    id: uuidv7(),
    tenant_id: 'tenant-a',
    cron: '* * * * *',
    time_zone: 'UTC',
    template_json: '{"tenant_id":"tenant-a","type":"t","payload":{},"destination":{"url":"https://example.com/"}}',
    start_at: null,
    end_at: null,
    missed_ticks: 'catch_up',
    catch_up_limit: 1,
    status: 'active',
    next_tick_at: now + MINUTE,
    created_at: now,
    ...over,
  };
}

export function scheduleContract(getStore: () => Store): void {
  describe('schedules', () => {
    let store: Store;
    let clock: FakeClock;
    beforeEach(() => {
      store = getStore();
      clock = new FakeClock();
    });

    it('stores a schedule and reads it back as written', async () => {
      const n = newSchedule(clock.now(), { start_at: clock.now(), end_at: clock.now() + 3_600_000, missed_ticks: 'skip', catch_up_limit: 7 });
      const created = await store.createSchedule(n);
      assert.deepEqual(created, { ...n, last_tick_at: null, last_job_id: null, updated_at: n.created_at });
      assert.deepEqual(await store.getSchedule(n.id), created);
      assert.equal(await store.getSchedule(uuidv7()), null);
    });

    it('lists newest first, by tenant and status, visiting each once through the cursor', async () => {
      const made = [];
      for (let i = 0; i < 5; i++) {
        made.push(await store.createSchedule(newSchedule(clock.now(), { tenant_id: i % 2 ? 'tenant-b' : 'tenant-a' })));
        clock.advance(1);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 5; i++) {
        const page = await store.listSchedules({}, 2, cursor);
        seen.push(...page.data.map((s) => s.id));
        cursor = page.next_cursor;
        if (cursor === null) break;
      }
      assert.deepEqual(seen, made.map((s) => s.id).reverse());
      const b = await store.listSchedules({ tenant_id: 'tenant-b' }, 10, null);
      assert.deepEqual(b.data.map((s) => s.id), [made[3]?.id, made[1]?.id]);
      assert.equal(b.next_cursor, null);
      await store.pauseSchedule(made[0]!.id, clock.now());
      assert.deepEqual((await store.listSchedules({ status: 'paused' }, 10, null)).data.map((s) => s.id), [made[0]?.id]);
    });

    it('pauses only an active schedule and resumes only a paused one', async () => {
      const s = await store.createSchedule(newSchedule(clock.now()));
      const paused = await store.pauseSchedule(s.id, clock.now() + 5);
      assert.equal(paused.kind, 'ok');
      assert.ok(paused.kind === 'ok' && paused.schedule.status === 'paused' && paused.schedule.updated_at === clock.now() + 5);
      const again = await store.pauseSchedule(s.id, clock.now());
      assert.equal(again.kind, 'conflict');
      assert.ok(again.kind === 'conflict' && again.schedule.status === 'paused');
      const resumed = await store.resumeSchedule(s.id, clock.now() + 10 * MINUTE, clock.now());
      assert.ok(resumed.kind === 'ok' && resumed.schedule.status === 'active' && resumed.schedule.next_tick_at === clock.now() + 10 * MINUTE);
      assert.equal((await store.resumeSchedule(s.id, clock.now(), clock.now())).kind, 'conflict');
      assert.equal((await store.pauseSchedule(uuidv7(), clock.now())).kind, 'not_found');
      assert.equal((await store.resumeSchedule(uuidv7(), 1, clock.now())).kind, 'not_found');
    });

    it('resumes with no next tick as ended', async () => {
      const s = await store.createSchedule(newSchedule(clock.now()));
      await store.pauseSchedule(s.id, clock.now());
      const r = await store.resumeSchedule(s.id, null, clock.now());
      assert.ok(r.kind === 'ok' && r.schedule.status === 'ended' && r.schedule.next_tick_at === null);
    });

    it('deletes a schedule and returns it as it was', async () => {
      const s = await store.createSchedule(newSchedule(clock.now()));
      assert.deepEqual(await store.deleteSchedule(s.id), s);
      assert.equal(await store.getSchedule(s.id), null);
      assert.equal(await store.deleteSchedule(s.id), null);
    });

    it('claims due active schedules earliest first, never one another owner holds until its lease expires', async () => {
      const now = clock.now();
      const late = await store.createSchedule(newSchedule(now, { next_tick_at: now - 1000 }));
      const early = await store.createSchedule(newSchedule(now, { next_tick_at: now - 5000 }));
      const soon = await store.createSchedule(newSchedule(now, { next_tick_at: now + LEASE_MS }));
      const paused = await store.createSchedule(newSchedule(now, { next_tick_at: now - 9000 }));
      await store.pauseSchedule(paused.id, now);
      const first = await store.claimDueSchedules('a', now, LEASE_MS, 1);
      assert.deepEqual(first.map((s) => s.id), [early.id]);
      const rest = await store.claimDueSchedules('b', now, LEASE_MS, 10);
      assert.deepEqual(rest.map((s) => s.id), [late.id]);
      assert.deepEqual(await store.claimDueSchedules('c', now + LEASE_MS - 1, LEASE_MS, 10), []);
      // a's and b's leases expire: someone else may take them over (with the one now due too)
      const taken = await store.claimDueSchedules('c', now + LEASE_MS, LEASE_MS, 10);
      assert.deepEqual(taken.map((s) => s.id).sort(), [early.id, late.id, soon.id].sort());
    });

    it('takes over schedules under a running lease when asked for all', async () => {
      const now = clock.now();
      const s = await store.createSchedule(newSchedule(now, { next_tick_at: now }));
      await store.claimDueSchedules('dead', now, LEASE_MS, 10);
      assert.deepEqual(await store.claimDueSchedules('me', now + 1, LEASE_MS, 10), []);
      assert.deepEqual((await store.claimDueSchedules('me', now + 1, LEASE_MS, 10, { all: true })).map((x) => x.id), [s.id]);
      assert.equal(await store.advanceSchedule({ id: s.id, owner: 'dead', next_tick_at: now + MINUTE, last_tick_at: null, last_job_id: null }, now), false);
      assert.equal(await store.advanceSchedule({ id: s.id, owner: 'me', next_tick_at: now + MINUTE, last_tick_at: null, last_job_id: null }, now), true);
    });

    it('advances a schedule only for the owner of its lease, and ends it without a next tick', async () => {
      const now = clock.now();
      const s = await store.createSchedule(newSchedule(now, { next_tick_at: now - 1000 }));
      await store.claimDueSchedules('a', now, LEASE_MS, 10);
      const adv = { id: s.id, next_tick_at: now + MINUTE, last_tick_at: now - 1000, last_job_id: 'job-1' };
      assert.equal(await store.advanceSchedule({ ...adv, owner: 'b' }, now), false);
      assert.equal(await store.advanceSchedule({ ...adv, owner: 'a' }, now + 3), true);
      // the lease is gone with the advance: a second one by the same owner does nothing
      assert.equal(await store.advanceSchedule({ ...adv, owner: 'a' }, now), false);
      const after = await store.getSchedule(s.id);
      assert.ok(after);
      assert.equal(after.next_tick_at, now + MINUTE);
      assert.equal(after.last_tick_at, now - 1000);
      assert.equal(after.last_job_id, 'job-1');
      assert.equal(after.updated_at, now + 3);
      assert.deepEqual(await store.claimDueSchedules('b', now, LEASE_MS, 10), []);

      // a round that created nothing keeps the last tick; no next tick ends it
      await store.claimDueSchedules('a', now + MINUTE, LEASE_MS, 10);
      assert.equal(await store.advanceSchedule({ id: s.id, owner: 'a', next_tick_at: null, last_tick_at: null, last_job_id: null }, now + MINUTE), true);
      const ended = await store.getSchedule(s.id);
      assert.equal(ended?.status, 'ended');
      assert.equal(ended?.next_tick_at, null);
      assert.equal(ended?.last_job_id, 'job-1');
    });

    it('does not advance a schedule paused while its tick was being created', async () => {
      const now = clock.now();
      const s = await store.createSchedule(newSchedule(now, { next_tick_at: now }));
      await store.claimDueSchedules('a', now, LEASE_MS, 10);
      await store.pauseSchedule(s.id, now);
      assert.equal(await store.advanceSchedule({ id: s.id, owner: 'a', next_tick_at: now + MINUTE, last_tick_at: now, last_job_id: 'j' }, now), false);
      assert.equal((await store.getSchedule(s.id))?.next_tick_at, now);
    });

    it('answers the earliest next tick of the active schedules', async () => {
      const now = clock.now();
      assert.equal(await store.nextScheduleTickAt(), null);
      await store.createSchedule(newSchedule(now, { next_tick_at: now + 5000 }));
      const p = await store.createSchedule(newSchedule(now, { next_tick_at: now + 1000 }));
      await store.createSchedule(newSchedule(now, { next_tick_at: now + 3000 }));
      await store.pauseSchedule(p.id, now);
      assert.equal(await store.nextScheduleTickAt(), now + 3000);
    });
  });
}
