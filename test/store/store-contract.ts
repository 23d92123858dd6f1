// The one suite every Store driver passes. It speaks only the Store interface, so a new driver runs
// it unchanged: storeContract('postgres', async () => ({ store, cleanup })).
// Time is an input: each test drives a FakeClock and passes its now() to the store.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { uuidv7 } from 'uuidv7';
import type { Attempt, AttemptOutcome } from '../../src/domain/attempt.js';
import { BULK_START, MAX_TALLY_ORIGINS, type BulkProgress, type JobSelector } from '../../src/domain/bulk.js';
import { JOB_STATUSES, type CreateOutcome, type Job, type JobStatus, type NewJob } from '../../src/domain/job.js';
import type { NextStep } from '../../src/domain/retry-policy.js';
import type { BulkStep, ClaimedJob, Store } from '../../src/store/store.js';
import { FakeClock } from '../support/fake-clock.js';
import { scheduleContract } from './schedule-contract.js';

export type MakeStore = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const LEASE_MS = 30 * SECOND;

export function newJob(now: number, over: Partial<NewJob> = {}): NewJob {
  return {
    id: uuidv7(),
    tenant_id: 'tenant-a',
    type: 'order.created',
    payload_json: '{"order":1}',
    destination: { url: 'https://example.com/hook', method: 'POST', timeout_ms: 5000, headers: {} },
    retry: { max_attempts: 3, base_delay_ms: 1000, max_delay_ms: 60_000 },
    rate_limit: null,
    run_at: now,
    idempotency_key: null,
    idempotency_hash: null,
    idempotency_expires_at: null,
    dedupe_key: null,
    dedupe_hash: null,
    dedupe_expires_at: null,
    ...over,
  };
}

function attemptOf(jobId: string, n: number, outcome: AttemptOutcome, now: number, over: Partial<Attempt> = {}): Attempt {
  const ok = outcome === 'success';
  return {
    job_id: jobId,
    attempt: n,
    started_at: now - 120,
    finished_at: now,
    duration_ms: 120,
    outcome,
    error_kind: ok ? null : 'http',
    status_code: ok ? 200 : outcome === 'retryable_error' ? 503 : 400,
    error: ok ? null : `HTTP ${outcome === 'retryable_error' ? 503 : 400}`,
    response_body: ok ? 'ok' : 'nope',
    ...over,
  };
}

function expectJob(o: CreateOutcome | undefined, kind: 'created' | 'idempotent_replay' | 'deduplicated'): Job {
  assert.ok(o, 'missing outcome');
  assert.equal(o.kind, kind);
  assert.ok('job' in o);
  return o.job;
}

function ids(jobs: readonly { id: string }[]): string[] {
  return jobs.map((j) => j.id);
}

export function storeContract(name: string, makeStore: MakeStore): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let clock: FakeClock;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      await store.migrate();
      clock = new FakeClock();
    });
    afterEach(async () => {
      await cleanup();
    });

    // ── helpers that reach a state through the interface only ───────────────────────────────────
    async function create(over: Partial<NewJob> = {}): Promise<Job> {
      const [o] = await store.createJobs([newJob(clock.now(), over)], clock.now());
      return expectJob(o, 'created');
    }

    async function mustGet(id: string): Promise<Job> {
      const j = await store.getJob(id);
      assert.ok(j, `job ${id} not found`);
      return j;
    }

    /** Claims exactly `id` for owner (anything else claimed on the way is released untouched). */
    async function claimOnly(id: string, owner: string): Promise<ClaimedJob> {
      const claimed = await store.claimDue(owner, clock.now(), LEASE_MS, 1000);
      const others = ids(claimed).filter((x) => x !== id);
      if (others.length) await store.release(others, owner, clock.now());
      const mine = claimed.find((j) => j.id === id);
      assert.ok(mine, `job ${id} was not claimable`);
      return mine;
    }

    async function running(id: string, owner = 'w1'): Promise<Job> {
      await claimOnly(id, owner);
      await store.markRunning([id], owner, clock.now());
      return mustGet(id);
    }

    async function complete(id: string, owner: string, outcome: AttemptOutcome, next: NextStep): Promise<void> {
      const job = await mustGet(id);
      const ordering = job.ordering_key === null ? null : { tenant_id: job.tenant_id, key: job.ordering_key };
      await store.completeAttempts(
        [{ attempt: attemptOf(id, job.attempts + 1, outcome, clock.now()), owner, next, ordering }],
        clock.now(),
      );
    }

    /** A fresh job in the given status, made the way the engine would make it. */
    async function jobIn(status: JobStatus): Promise<Job> {
      switch (status) {
        case 'scheduled':
          return create({ run_at: clock.now() + HOUR });
        case 'queued':
          return create();
        case 'running':
          return running((await create()).id);
        case 'retrying': {
          const j = await running((await create()).id);
          await complete(j.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: clock.now() + HOUR });
          return mustGet(j.id);
        }
        case 'success':
        case 'failed': {
          const j = await running((await create()).id);
          const outcome = status === 'success' ? 'success' : 'permanent_error';
          await complete(j.id, 'w1', outcome, { status });
          return mustGet(j.id);
        }
        case 'cancelled': {
          const j = await create();
          const r = await store.cancelJob(j.id, clock.now());
          assert.equal(r.kind, 'ok');
          return mustGet(j.id);
        }
      }
    }

    // ── lifecycle ──────────────────────────────────────────────────────────────────────────────
    describe('lifecycle', () => {
      it('migrates again without error on an up-to-date database', async () => {
        await store.migrate();
        await store.migrate();
        await create();
      });

      it('answers ping', async () => {
        await store.ping();
      });
    });

    // ── ordering keys ──────────────────────────────────────────────────────────────────────────
    describe('ordering keys', () => {
      const claimIds = async (owner = 'w1') => ids(await store.claimDue(owner, clock.now(), LEASE_MS, 1000));
      /** Jobs of one key, created one request each, in this order. */
      async function line(n: number, key = 'order-1', over: Partial<NewJob> = {}): Promise<Job[]> {
        const out: Job[] = [];
        for (let i = 0; i < n; i++) out.push(await create({ ordering_key: key, payload_json: `{"i":${i}}`, ...over }));
        return out;
      }

      it('lets only the first unfinished job of a key be claimed; the others wait for their key', async () => {
        const [a, b, c] = await line(3);
        const free = await create();
        const other = await create({ ordering_key: 'order-2' });
        assert.equal(a!.waiting_for_key, false);
        assert.equal(b!.waiting_for_key, true);
        assert.equal((await mustGet(c!.id)).waiting_for_key, true);
        assert.deepEqual(sorted(await claimIds()), sorted([a!.id, free.id, other.id]));
        assert.deepEqual(await claimIds('w2'), [], 'the waiting jobs are claimable by nobody');
        assert.equal(await store.nextDueAt(), null, 'a job waiting for its key is never due');
      });

      it('hands the key to the next job, in creation order, when the head succeeds', async () => {
        const jobs = await line(4);
        const order: string[] = [];
        for (let i = 0; i < jobs.length; i++) {
          const claimed = await claimIds();
          assert.equal(claimed.length, 1, `one job of the key at a time (round ${i})`);
          order.push(claimed[0]!);
          await complete(claimed[0]!, 'w1', 'success', { status: 'success' });
        }
        assert.deepEqual(order, ids(jobs));
        assert.equal((await mustGet(jobs[3]!.id)).waiting_for_key, false);
      });

      it("holds the key while the head waits to retry, then moves on when it dead-letters", async () => {
        const [a, b] = await line(2);
        await claimOnly(a!.id, 'w1');
        await complete(a!.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: clock.now() + 10 * SECOND });
        assert.equal(await store.nextDueAt(), clock.now() + 10 * SECOND, 'the retry is what is due next');
        assert.deepEqual(await claimIds(), [], 'b waits behind the retrying head');
        clock.advance(10 * SECOND);
        assert.deepEqual(await claimIds(), [a!.id], 'the retry, not b');
        await complete(a!.id, 'w1', 'permanent_error', { status: 'failed' });
        assert.equal((await mustGet(b!.id)).waiting_for_key, false);
        assert.deepEqual(await claimIds(), [b!.id]);
      });

      it('moves the line on when the head is cancelled, and not when a waiting job is', async () => {
        const [a, b, c] = await line(3);
        assert.equal((await store.cancelJob(b!.id, clock.now())).kind, 'ok');
        assert.equal((await mustGet(b!.id)).waiting_for_key, false, 'a cancelled job waits for nothing');
        assert.deepEqual(await claimIds(), [a!.id], 'the head still holds the key');
        assert.equal((await store.cancelJob(a!.id, clock.now())).kind, 'ok');
        assert.deepEqual(await claimIds('w2'), [c!.id], 'c is next: b was cancelled');
      });

      it('keeps keys apart per tenant', async () => {
        const [a] = await line(1, 'k');
        const [b] = await line(1, 'k', { tenant_id: 'tenant-b' });
        assert.equal(b!.waiting_for_key, false);
        assert.deepEqual(sorted(await claimIds()), sorted([a!.id, b!.id]));
      });

      it('keeps the place of a scheduled job: later jobs of its key wait until it has run', async () => {
        const [later] = await line(1, 'k', { run_at: clock.now() + HOUR });
        const [now] = await line(1, 'k');
        assert.equal(later!.status, 'scheduled');
        assert.equal(now!.waiting_for_key, true);
        assert.deepEqual(await claimIds(), []);
        assert.equal(await store.nextDueAt(), clock.now() + HOUR);
        clock.advance(HOUR);
        assert.deepEqual(await claimIds(), [later!.id]);
        await complete(later!.id, 'w1', 'success', { status: 'success' });
        assert.deepEqual(await claimIds(), [now!.id]);
      });

      it('puts a retried dead job at the back of its line: waiting when the key is busy, due now when idle', async () => {
        const [a, b, c] = await line(3);
        await claimOnly(a!.id, 'w1');
        await complete(a!.id, 'w1', 'permanent_error', { status: 'failed' });
        assert.deepEqual(await claimIds(), [b!.id]);
        const retried = await store.retryJob(a!.id, clock.now());
        assert.equal(retried.kind, 'ok');
        assert.ok(retried.kind === 'ok' && retried.job.waiting_for_key, 'behind b (running) and c');
        await complete(b!.id, 'w1', 'success', { status: 'success' });
        assert.deepEqual(await claimIds(), [c!.id], 'c was in line before the retry');
        await complete(c!.id, 'w1', 'success', { status: 'success' });
        assert.deepEqual(await claimIds(), [a!.id]);
        await complete(a!.id, 'w1', 'permanent_error', { status: 'failed' });
        const again = await store.retryJob(a!.id, clock.now());
        assert.ok(again.kind === 'ok' && !again.job.waiting_for_key, 'an idle key: due at once');
        assert.deepEqual(await claimIds(), [a!.id]);
      });

      it('writes a job behind an unfinished one of its key without the lease it asked for', async () => {
        const now = clock.now();
        const lease = { owner: 'w1', expires_at: now + LEASE_MS };
        const outs = await store.createJobs(
          [newJob(now, { ordering_key: 'k', lease }), newJob(now, { ordering_key: 'k', lease, payload_json: '{"n":2}' })],
          now,
        );
        const [first, second] = outs.map((o) => expectJob(o, 'created'));
        assert.equal(first!.waiting_for_key, false);
        assert.equal(second!.waiting_for_key, true);
        assert.equal(await store.renewLeases('w1', now, LEASE_MS), 1, 'only the first is held');
        await complete(first!.id, 'w1', 'success', { status: 'success' });
        assert.deepEqual(await claimIds('w2'), [second!.id]);
      });

      it('moves lines on for a bulk cancel, and sends bulk-retried jobs to the back', async () => {
        const [a, b, c] = await line(3);
        const r = await store.bulkStep(
          { action: 'cancel', selector: {}, chunk: 2, limit: 2, progress: BULK_START, apply: true },
          clock.now(),
        );
        assert.deepEqual(sorted(ids(r.jobs)), sorted([a!.id, b!.id]), 'the first two, in id order');
        assert.deepEqual(await claimIds(), [c!.id]);
        const retried = await store.bulkStep(
          { action: 'retry', selector: { statuses: ['cancelled'] }, chunk: 10, limit: null, progress: BULK_START, apply: true },
          clock.now(),
        );
        assert.equal(retried.jobs.length, 2);
        assert.equal((await mustGet(a!.id)).waiting_for_key, true);
        assert.equal((await mustGet(b!.id)).waiting_for_key, true);
        await complete(c!.id, 'w1', 'success', { status: 'success' });
        assert.deepEqual(await claimIds(), [a!.id], 'a was retried first');
        await complete(a!.id, 'w1', 'success', { status: 'success' });
        assert.deepEqual(await claimIds(), [b!.id]);
      });

      it('lists one key\'s jobs, newest first', async () => {
        const jobs = await line(3);
        await line(1, 'other');
        await create();
        const page = await store.listJobs({ ordering_key: 'order-1' }, 10, null);
        assert.deepEqual(ids(page.data), ids(jobs).reverse());
        assert.deepEqual(page.data.map((j) => j.waiting_for_key), [true, true, false]);
        assert.deepEqual(ids((await store.listJobs({ ordering_key: 'order-1', tenant_id: 'tenant-b' }, 10, null)).data), []);
      });

      const sorted = (xs: string[]) => [...xs].sort();
    });

    // ── createJobs ─────────────────────────────────────────────────────────────────────────────
    describe('createJobs', () => {
      it('calls `committed` once, with the outcomes it resolves with, no later than it resolves', async () => {
        const now = clock.now();
        const calls: CreateOutcome[][] = [];
        let resolved = false;
        const created = store.createJobs([newJob(now), newJob(now, { run_at: now + HOUR })], now, (outcomes) => {
          assert.equal(resolved, false, 'called before the promise resolved');
          calls.push(outcomes);
        });
        const outcomes = await created.finally(() => (resolved = true));
        assert.equal(calls.length, 1);
        assert.deepEqual(calls[0], outcomes);
        assert.deepEqual(outcomes.map((o) => expectJob(o, 'created').status), ['queued', 'scheduled']);
      });

      it('writes a job already held when it carries a lease, so no claim takes it', async () => {
        const now = clock.now();
        const [out] = await store.createJobs([newJob(now, { lease: { owner: 'w1', expires_at: now + LEASE_MS } })], now);
        const job = expectJob(out, 'created');
        assert.equal(job.status, 'queued');
        assert.deepEqual(await store.claimDue('w2', now, LEASE_MS, 10), []);
        assert.equal(await store.nextDueAt(), null);
        assert.equal(await store.renewLeases('w1', now, LEASE_MS), 1);
        assert.equal(await store.recoverLeases(now, { all: true }), 1);
        assert.deepEqual((await store.claimDue('w2', now, LEASE_MS, 10)).map((j) => j.id), [job.id]);
      });

      it('creates a job queued when run_at is now or past, scheduled when it is in the future', async () => {
        const now = clock.now();
        const out = await store.createJobs(
          [newJob(now, { run_at: now - 1 }), newJob(now, { run_at: now }), newJob(now, { run_at: now + 1 })],
          now,
        );
        assert.deepEqual(
          out.map((o) => expectJob(o, 'created').status),
          ['queued', 'queued', 'scheduled'],
        );
      });

      it('returns one outcome per input, in input order', async () => {
        const inputs = Array.from({ length: 5 }, () => newJob(clock.now()));
        const out = await store.createJobs(inputs, clock.now());
        assert.deepEqual(
          out.map((o) => expectJob(o, 'created').id),
          ids(inputs),
        );
      });

      it('returns an empty list for an empty batch', async () => {
        assert.deepEqual(await store.createJobs([], clock.now()), []);
      });

      it('stores every field and returns the job as getJob reads it', async () => {
        const now = clock.now();
        const input = newJob(now, {
          tenant_id: 't-1',
          type: 'invoice.paid',
          payload_json: '{ "b": 1,  "a": [1, 2.50], "s": "é✓\\u0000" }',
          destination: {
            url: 'https://hooks.example.org/x?y=1',
            method: 'PUT',
            timeout_ms: 7000,
            headers: { 'x-one': '1', Authorization: 'Bearer t' },
          },
          retry: { max_attempts: 9, base_delay_ms: 250, max_delay_ms: 90_000 },
          rate_limit: { rps: 2.5, burst: 5 },
          run_at: now + 10 * SECOND,
          idempotency_key: 'idem-1',
          idempotency_hash: 'h1',
          idempotency_expires_at: now + HOUR,
          dedupe_key: 'dk-1',
          dedupe_hash: 'dh-1',
          dedupe_expires_at: now + HOUR,
        });
        const created = expectJob((await store.createJobs([input], now))[0], 'created');
        const expected: Job = {
          id: input.id,
          tenant_id: 't-1',
          type: 'invoice.paid',
          status: 'scheduled',
          payload_json: input.payload_json,
          destination: input.destination,
          retry: input.retry,
          rate_limit: { rps: 2.5, burst: 5 },
          run_at: now + 10 * SECOND,
          attempts: 0,
          next_attempt_at: null,
          last_error: null,
          last_status_code: null,
          idempotency_key: 'idem-1',
          dedupe_key: 'dk-1',
          ordering_key: null,
          waiting_for_key: false,
          created_at: now,
          updated_at: now,
          completed_at: null,
          traceparent: null,
          tracestate: null,
        };
        assert.deepEqual(created, expected);
        assert.deepEqual(await store.getJob(input.id), expected);
      });

      it('keeps the payload as the exact bytes it was given', async () => {
        const payload = '{"z":1,"a":{"n":1.0e3},"emoji":"🚀","pad":"  "}  ';
        const j = await create({ payload_json: payload });
        assert.equal((await mustGet(j.id)).payload_json, payload);
      });

      it('replays an unexpired idempotency key with the same hash, returning the original job', async () => {
        const key = { idempotency_key: 'k1', idempotency_hash: 'h', idempotency_expires_at: clock.now() + HOUR };
        const original = await create(key);
        clock.advance(SECOND);
        await store.cancelJob(original.id, clock.now());
        const [o] = await store.createJobs([newJob(clock.now(), key)], clock.now());
        const replayed = expectJob(o, 'idempotent_replay');
        assert.equal(replayed.id, original.id);
        assert.equal(replayed.status, 'cancelled', 'the original as it is now');
        assert.equal((await store.listJobs({}, 10, null)).data.length, 1);
      });

      it('reports a conflict when an unexpired idempotency key comes with another hash', async () => {
        const original = await create({ idempotency_key: 'k1', idempotency_hash: 'h1', idempotency_expires_at: clock.now() + HOUR });
        const [o] = await store.createJobs(
          [newJob(clock.now(), { idempotency_key: 'k1', idempotency_hash: 'h2', idempotency_expires_at: clock.now() + HOUR })],
          clock.now(),
        );
        assert.deepEqual(o, { kind: 'idempotency_conflict', job_id: original.id });
      });

      it('scopes idempotency keys to the tenant', async () => {
        const key = { idempotency_key: 'k1', idempotency_hash: 'h', idempotency_expires_at: clock.now() + HOUR };
        const a = await create({ ...key, tenant_id: 'a' });
        const b = await create({ ...key, tenant_id: 'b' });
        assert.notEqual(a.id, b.id);
      });

      it('creates a new job once the idempotency record expired, and the key then points at it', async () => {
        const expiresAt = clock.now() + HOUR;
        const first = await create({ idempotency_key: 'k1', idempotency_hash: 'h1', idempotency_expires_at: expiresAt });
        clock.set(expiresAt);
        const later = { idempotency_key: 'k1', idempotency_expires_at: clock.now() + HOUR };
        const second = expectJob(
          (await store.createJobs([newJob(clock.now(), { ...later, idempotency_hash: 'h2' })], clock.now()))[0],
          'created',
        );
        assert.notEqual(second.id, first.id);
        const [again] = await store.createJobs([newJob(clock.now(), { ...later, idempotency_hash: 'h2' })], clock.now());
        assert.equal(expectJob(again, 'idempotent_replay').id, second.id);
      });

      it('deduplicates an unexpired dedupe hash to the original job', async () => {
        const d = { dedupe_key: 'order-1', dedupe_hash: 'dh', dedupe_expires_at: clock.now() + HOUR };
        const original = await create(d);
        clock.advance(SECOND);
        const [o] = await store.createJobs([newJob(clock.now(), d)], clock.now());
        assert.equal(expectJob(o, 'deduplicated').id, original.id);
        assert.equal((await store.listJobs({}, 10, null)).data.length, 1);
      });

      it('scopes dedupe hashes to the tenant', async () => {
        const d = { dedupe_key: 'order-1', dedupe_hash: 'dh', dedupe_expires_at: clock.now() + HOUR };
        const a = await create({ ...d, tenant_id: 'a' });
        const b = await create({ ...d, tenant_id: 'b' });
        assert.notEqual(a.id, b.id);
      });

      it('creates a new job once the dedupe record expired', async () => {
        const expiresAt = clock.now() + HOUR;
        const first = await create({ dedupe_hash: 'dh', dedupe_expires_at: expiresAt });
        clock.set(expiresAt);
        const second = await create({ dedupe_hash: 'dh', dedupe_expires_at: clock.now() + HOUR });
        assert.notEqual(second.id, first.id);
        const [o] = await store.createJobs([newJob(clock.now(), { dedupe_hash: 'dh', dedupe_expires_at: clock.now() + HOUR })], clock.now());
        assert.equal(expectJob(o, 'deduplicated').id, second.id);
      });

      it('checks the idempotency key before the dedupe hash', async () => {
        const exp = clock.now() + HOUR;
        const original = await create({ idempotency_key: 'k', idempotency_hash: 'h1', idempotency_expires_at: exp, dedupe_hash: 'd', dedupe_expires_at: exp });
        const [conflict] = await store.createJobs(
          [newJob(clock.now(), { idempotency_key: 'k', idempotency_hash: 'h2', idempotency_expires_at: exp, dedupe_hash: 'd', dedupe_expires_at: exp })],
          clock.now(),
        );
        assert.deepEqual(conflict, { kind: 'idempotency_conflict', job_id: original.id });
      });

      it('replays the idempotency key of a deduplicated request with the original job', async () => {
        const exp = clock.now() + HOUR;
        const original = await create({ dedupe_hash: 'd', dedupe_expires_at: exp });
        const withKey = { idempotency_key: 'k2', idempotency_hash: 'h2', idempotency_expires_at: exp + HOUR, dedupe_hash: 'd', dedupe_expires_at: exp };
        await store.createJobs([newJob(clock.now(), withKey)], clock.now());
        clock.set(exp); // the dedupe record is gone, the idempotency record is not
        const [replay] = await store.createJobs([newJob(clock.now(), withKey)], clock.now());
        assert.equal(expectJob(replay, 'idempotent_replay').id, original.id);
        const [conflict] = await store.createJobs([newJob(clock.now(), { ...withKey, idempotency_hash: 'other' })], clock.now());
        assert.deepEqual(conflict, { kind: 'idempotency_conflict', job_id: original.id });
      });

      it('creates one job for two inputs with one idempotency key in one batch', async () => {
        const key = { idempotency_key: 'k', idempotency_hash: 'h', idempotency_expires_at: clock.now() + HOUR };
        const [a, b, c] = await store.createJobs(
          [newJob(clock.now(), key), newJob(clock.now(), key), newJob(clock.now(), { ...key, idempotency_hash: 'x' })],
          clock.now(),
        );
        const first = expectJob(a, 'created');
        assert.equal(expectJob(b, 'idempotent_replay').id, first.id);
        assert.deepEqual(c, { kind: 'idempotency_conflict', job_id: first.id });
        assert.equal((await store.listJobs({}, 10, null)).data.length, 1);
      });

      it('creates one job for two inputs with one dedupe hash in one batch', async () => {
        const d = { dedupe_hash: 'd', dedupe_expires_at: clock.now() + HOUR };
        const [a, b] = await store.createJobs([newJob(clock.now(), d), newJob(clock.now(), d)], clock.now());
        assert.equal(expectJob(b, 'deduplicated').id, expectJob(a, 'created').id);
        assert.equal((await store.listJobs({}, 10, null)).data.length, 1);
      });

      it('creates nothing from a batch when one input fails', async () => {
        const good = newJob(clock.now());
        const dup = newJob(clock.now());
        await assert.rejects(store.createJobs([good, dup, { ...dup }], clock.now()));
        assert.equal(await store.getJob(good.id), null);
        assert.equal(await store.getJob(dup.id), null);
      });
    });

    // ── reads ──────────────────────────────────────────────────────────────────────────────────
    describe('reads', () => {
      it('returns null for a job that does not exist', async () => {
        assert.equal(await store.getJob(uuidv7()), null);
      });

      it('lists jobs newest first', async () => {
        const made: Job[] = [];
        for (let i = 0; i < 5; i++) made.push(await create());
        const page = await store.listJobs({}, 10, null);
        assert.deepEqual(ids(page.data), ids(made).reverse());
        assert.equal(page.next_cursor, null);
      });

      it('filters by tenant, status and type, alone and together', async () => {
        const a1 = await create({ tenant_id: 'a', type: 'x' });
        const a2 = await create({ tenant_id: 'a', type: 'y', run_at: clock.now() + HOUR });
        const b1 = await create({ tenant_id: 'b', type: 'x' });
        const b2 = await create({ tenant_id: 'b', type: 'y', run_at: clock.now() + HOUR });
        const list = async (f: Parameters<Store['listJobs']>[0]) => ids((await store.listJobs(f, 100, null)).data);
        assert.deepEqual(await list({ tenant_id: 'a' }), [a2.id, a1.id]);
        assert.deepEqual(await list({ status: 'scheduled' }), [b2.id, a2.id]);
        assert.deepEqual(await list({ type: 'x' }), [b1.id, a1.id]);
        assert.deepEqual(await list({ tenant_id: 'b', status: 'queued' }), [b1.id]);
        assert.deepEqual(await list({ tenant_id: 'a', type: 'y' }), [a2.id]);
        assert.deepEqual(await list({ status: 'queued', type: 'y' }), []);
        assert.deepEqual(await list({ tenant_id: 'b', status: 'scheduled', type: 'y' }), [b2.id]);
        assert.deepEqual(await list({ tenant_id: 'nobody' }), []);
      });

      it('walks every job exactly once across pages, newest first, while jobs are being created', async () => {
        const existing: Job[] = [];
        for (let i = 0; i < 23; i++) existing.push(await create({ tenant_id: i % 3 === 0 ? 'other' : 'tenant-a' }));
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: Awaited<ReturnType<Store['listJobs']>> = await store.listJobs({}, 4, cursor);
          assert.ok(page.data.length <= 4);
          seen.push(...ids(page.data));
          cursor = page.next_cursor;
          pages++;
          await create(); // a concurrent insert: newer than everything walked so far
          await create({ tenant_id: 'other' });
        } while (cursor !== null);
        assert.deepEqual(seen, ids(existing).reverse());
        assert.equal(pages, 6);

        // The same with a filter, again inserting between pages.
        const wanted = ids((await store.listJobs({ tenant_id: 'tenant-a' }, 1000, null)).data);
        const filtered: string[] = [];
        cursor = null;
        do {
          const page: Awaited<ReturnType<Store['listJobs']>> = await store.listJobs({ tenant_id: 'tenant-a' }, 3, cursor);
          filtered.push(...ids(page.data));
          cursor = page.next_cursor;
          await create();
        } while (cursor !== null);
        assert.deepEqual(filtered, wanted);
      });

      it('ends with a null cursor when the last page is exactly full', async () => {
        for (let i = 0; i < 4; i++) await create();
        const first = await store.listJobs({}, 2, null);
        assert.ok(first.next_cursor);
        const second = await store.listJobs({}, 2, first.next_cursor);
        assert.equal(second.data.length, 2);
        assert.equal(second.next_cursor, null);
      });

      it('accepts limits 1 and 1000 and rejects limits outside 1..1000', async () => {
        await create();
        assert.equal((await store.listJobs({}, 1, null)).data.length, 1);
        assert.equal((await store.listJobs({}, 1000, null)).data.length, 1);
        await assert.rejects(store.listJobs({}, 0, null), RangeError);
        await assert.rejects(store.listJobs({}, 1001, null), RangeError);
      });

      it('lists attempts oldest first', async () => {
        const j = await running((await create()).id);
        await complete(j.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: clock.now() + SECOND });
        clock.advance(SECOND);
        await running(j.id);
        await complete(j.id, 'w1', 'success', { status: 'success' });
        const attempts = await store.listAttempts(j.id);
        assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome]), [[1, 'retryable_error'], [2, 'success']]);
        assert.deepEqual(attempts[1], attemptOf(j.id, 2, 'success', clock.now()));
        assert.deepEqual(await store.listAttempts(uuidv7()), []);
      });

      it('counts jobs per status with every status present', async () => {
        const zero = await store.countByStatus();
        assert.deepEqual(zero, Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])));
        for (const s of JOB_STATUSES) await jobIn(s);
        await jobIn('queued');
        const counts = await store.countByStatus();
        assert.deepEqual(counts, { scheduled: 1, queued: 2, running: 1, retrying: 1, success: 1, failed: 1, cancelled: 1 });
      });
    });

    // ── claimDue / nextDueAt / markRunning ────────────────────────────────────────────────────
    describe('claimDue', () => {
      it('claims due jobs oldest due first, ties broken by id, up to the limit', async () => {
        const now = clock.now();
        const late = await create({ run_at: now - 1 * SECOND });
        const early1 = await create({ run_at: now - 3 * SECOND });
        const mid = await create({ run_at: now - 2 * SECOND });
        const early2 = await create({ run_at: now - 3 * SECOND });
        const first = await store.claimDue('w1', now, LEASE_MS, 3);
        assert.deepEqual(ids(first), [early1.id, early2.id, mid.id]);
        const rest = await store.claimDue('w1', now, LEASE_MS, 3);
        assert.deepEqual(ids(rest), [late.id]);
      });

      it('shares a claim between tenants: a backlog of one does not crowd out another tenant’s later job', async () => {
        const now = clock.now();
        for (let i = 0; i < 20; i++) await create({ tenant_id: 'big', run_at: now - 10 * SECOND + i });
        const small = await create({ tenant_id: 'small', run_at: now });
        const first = await store.claimDue('w1', now, LEASE_MS, 4);
        assert.equal(first.length, 4);
        assert.ok(ids(first).includes(small.id), 'the small tenant gets its share of the first claim');
        assert.equal(first.filter((j) => j.tenant_id === 'big').length, 3, 'the rest of the claim goes to the others');
      });

      it('shares with a tenant that appears after claims that found one, at the latest 100 ms later', async () => {
        const now = clock.now();
        for (let i = 0; i < 20; i++) await create({ tenant_id: 'big', run_at: now - 10 * SECOND + i });
        assert.equal((await store.claimDue('w1', now, LEASE_MS, 2)).length, 2);
        const small = await create({ tenant_id: 'small', run_at: now });
        // the store may keep the one-tenant answer for up to 100 ms (SQLite does); never longer
        const later = await store.claimDue('w1', now + 100, LEASE_MS, 4);
        assert.ok(ids(later).includes(small.id), 'the new tenant gets its share 100 ms later');
        assert.equal(later.filter((j) => j.tenant_id === 'big').length, 3);
      });

      it('takes tenants in turn from one claim to the next', async () => {
        const now = clock.now();
        for (const t of ['a', 'b', 'c']) for (let i = 0; i < 3; i++) await create({ tenant_id: t, run_at: now - SECOND });
        const order: string[] = [];
        for (let i = 0; i < 6; i++) order.push(...(await store.claimDue('w1', now, LEASE_MS, 1)).map((j) => j.tenant_id));
        assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c']);
      });

      it('claims nothing with a limit below 1', async () => {
        await create();
        assert.deepEqual(await store.claimDue('w1', clock.now(), LEASE_MS, 0), []);
      });

      it('claims only jobs whose due time has come', async () => {
        const now = clock.now();
        const dueNow = await create({ run_at: now });
        await create({ run_at: now + 1 });
        assert.deepEqual(ids(await store.claimDue('w1', now, LEASE_MS, 10)), [dueNow.id]);
      });

      it('leases the claimed jobs to the owner until now + leaseMs', async () => {
        const j = await create();
        const [c] = await store.claimDue('w1', clock.now(), LEASE_MS, 10);
        assert.equal(c?.id, j.id);
        assert.equal(c?.lease_owner, 'w1');
        assert.equal(c?.status, 'queued');
        // The lease holds until it expires, then recovery frees it.
        clock.advance(LEASE_MS);
        assert.equal(await store.recoverLeases(clock.now()), 0);
        clock.advance(1);
        assert.equal(await store.recoverLeases(clock.now()), 1);
      });

      it('turns a claimed scheduled job into queued', async () => {
        const j = await create({ run_at: clock.now() + SECOND });
        assert.equal(j.status, 'scheduled');
        clock.advance(SECOND);
        const [c] = await store.claimDue('w1', clock.now(), LEASE_MS, 10);
        assert.equal(c?.id, j.id);
        assert.equal(c?.status, 'queued');
        assert.equal((await mustGet(j.id)).status, 'queued');
      });

      it('claims a retrying job once its next attempt is due, keeping its status', async () => {
        const j = await jobIn('retrying');
        assert.deepEqual(await store.claimDue('w2', clock.now(), LEASE_MS, 10), []);
        clock.advance(HOUR);
        const [c] = await store.claimDue('w2', clock.now(), LEASE_MS, 10);
        assert.equal(c?.id, j.id);
        assert.equal(c?.status, 'retrying');
        assert.equal(c?.attempts, 1);
      });

      it('does not claim a job someone holds, running jobs or terminal jobs', async () => {
        await jobIn('running');
        await jobIn('success');
        await jobIn('failed');
        await jobIn('cancelled');
        const held = await create();
        await claimOnly(held.id, 'w1');
        clock.advance(HOUR);
        assert.deepEqual(await store.claimDue('w1', clock.now(), LEASE_MS, 100), []);
        assert.deepEqual(await store.claimDue('w2', clock.now(), LEASE_MS, 100), []);
      });

      it('claims a due job only once across two owners', async () => {
        const all: Job[] = [];
        for (let i = 0; i < 60; i++) all.push(await create({ run_at: clock.now() - (i % 7) }));
        const byOwner: Record<string, string[]> = { a: [], b: [] };
        // Interleaved and concurrent claims.
        const rounds = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.claimDue(i % 2 ? 'a' : 'b', clock.now(), LEASE_MS, 7).then((c) => ({ owner: i % 2 ? 'a' : 'b', c }))),
        );
        for (const { owner, c } of rounds) {
          for (const j of c) assert.equal(j.lease_owner, owner);
          byOwner[owner]?.push(...ids(c));
        }
        const a = new Set(byOwner.a);
        const b = new Set(byOwner.b);
        assert.equal(a.size + b.size, 60);
        for (const id of a) assert.ok(!b.has(id), `job ${id} claimed by both owners`);
        assert.deepEqual([...a, ...b].sort(), ids(all).sort());
      });
    });

    describe('nextDueAt', () => {
      it('is null when nothing waits', async () => {
        assert.equal(await store.nextDueAt(), null);
        await jobIn('success');
        await jobIn('running');
        assert.equal(await store.nextDueAt(), null);
      });

      it('is the earliest due time among waiting jobs no one holds, scheduled ones included', async () => {
        const now = clock.now();
        await create({ run_at: now + 5 * SECOND });
        await create({ run_at: now + 3 * SECOND });
        assert.equal(await store.nextDueAt(), now + 3 * SECOND);
        const soon = await create({ run_at: now - SECOND });
        assert.equal(await store.nextDueAt(), now - SECOND);
        await claimOnly(soon.id, 'w1');
        assert.equal(await store.nextDueAt(), now + 3 * SECOND);
      });

      it('follows a retrying job to its next attempt time', async () => {
        const j = await running((await create()).id);
        const at = clock.now() + 42 * SECOND;
        await complete(j.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: at });
        assert.equal(await store.nextDueAt(), at);
      });
    });

    describe('markRunning', () => {
      it('marks waiting jobs the owner holds as running', async () => {
        const a = await create();
        const b = await create();
        await store.claimDue('w1', clock.now(), LEASE_MS, 10);
        clock.advance(5);
        await store.markRunning([a.id, b.id], 'w1', clock.now());
        for (const id of [a.id, b.id]) {
          const j = await mustGet(id);
          assert.equal(j.status, 'running');
          assert.equal(j.updated_at, clock.now());
        }
      });

      it('leaves jobs another owner holds, unheld jobs and cancelled jobs unchanged', async () => {
        const other = await create();
        await claimOnly(other.id, 'w2');
        const unheld = await create();
        const cancelled = await create();
        await claimOnly(cancelled.id, 'w1');
        await store.cancelJob(cancelled.id, clock.now());
        await store.markRunning([other.id, unheld.id, cancelled.id, uuidv7()], 'w1', clock.now());
        assert.equal((await mustGet(other.id)).status, 'queued');
        assert.equal((await mustGet(unheld.id)).status, 'queued');
        assert.equal((await mustGet(cancelled.id)).status, 'cancelled');
      });
    });

    // ── completeAttempts ───────────────────────────────────────────────────────────────────────
    describe('completeAttempts', () => {
      it('records a success: attempt stored, status success, completed_at set, lease cleared', async () => {
        const j = await running((await create()).id);
        clock.advance(200);
        await complete(j.id, 'w1', 'success', { status: 'success' });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'success');
        assert.equal(after.attempts, 1);
        assert.equal(after.completed_at, clock.now());
        assert.equal(after.updated_at, clock.now());
        assert.equal(after.last_error, null);
        assert.equal(after.last_status_code, 200);
        assert.equal(after.next_attempt_at, null);
        assert.deepEqual(await store.listAttempts(j.id), [attemptOf(j.id, 1, 'success', clock.now())]);
        assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 0, 'lease cleared');
      });

      it('records a retryable failure: status retrying, due again at next_attempt_at, lease cleared', async () => {
        const j = await running((await create()).id);
        const at = clock.now() + 10 * SECOND;
        await complete(j.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: at });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'retrying');
        assert.equal(after.attempts, 1);
        assert.equal(after.next_attempt_at, at);
        assert.equal(after.last_error, 'HTTP 503');
        assert.equal(after.last_status_code, 503);
        assert.equal(after.completed_at, null);
        assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 0, 'lease cleared');
        clock.set(at - 1);
        assert.deepEqual(await store.claimDue('w1', clock.now(), LEASE_MS, 10), []);
        clock.set(at);
        assert.deepEqual(ids(await store.claimDue('w1', clock.now(), LEASE_MS, 10)), [j.id]);
      });

      it('records a final failure: status failed, completed_at set', async () => {
        const j = await running((await create()).id);
        await complete(j.id, 'w1', 'permanent_error', { status: 'failed' });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'failed');
        assert.equal(after.completed_at, clock.now());
        assert.equal(after.last_error, 'HTTP 400');
        assert.equal(after.last_status_code, 400);
        assert.equal((await store.listAttempts(j.id)).length, 1);
      });

      it('keeps a job cancelled mid-flight cancelled, still recording the attempt', async () => {
        const j = await running((await create()).id);
        const cancelledAt = clock.now();
        await store.cancelJob(j.id, cancelledAt);
        clock.advance(100);
        await complete(j.id, 'w1', 'success', { status: 'success' });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'cancelled');
        assert.equal(after.completed_at, cancelledAt);
        assert.equal(after.attempts, 1);
        assert.equal(after.last_status_code, 200);
        assert.equal((await store.listAttempts(j.id)).length, 1);
      });

      it('does not change the status when the owner lost the lease to another dispatcher', async () => {
        const j = await running((await create()).id, 'w1');
        clock.advance(LEASE_MS + 1);
        assert.equal(await store.recoverLeases(clock.now()), 1);
        await claimOnly(j.id, 'w2');
        await store.markRunning([j.id], 'w2', clock.now());
        await complete(j.id, 'w1', 'permanent_error', { status: 'failed' });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'running', 'w2 still delivers it');
        assert.equal(after.attempts, 1);
        assert.equal(await store.renewLeases('w2', clock.now(), LEASE_MS), 1, 'w2 keeps its lease');
        await complete(j.id, 'w2', 'success', { status: 'success' });
        assert.equal((await mustGet(j.id)).status, 'success');
        assert.equal((await store.listAttempts(j.id)).length, 2);
      });

      it('applies a result from a job held but never marked running (short attempts are not marked)', async () => {
        const j = await create();
        await claimOnly(j.id, 'w1');
        await complete(j.id, 'w1', 'success', { status: 'success' });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'success');
        assert.equal(after.attempts, 1);
        assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 0, 'the lease is cleared');
      });

      it('does not change the status from a result of an owner whose job another owner claimed since', async () => {
        const j = await running((await create()).id, 'w1');
        clock.advance(LEASE_MS + 1);
        await store.recoverLeases(clock.now());
        await claimOnly(j.id, 'w2');
        await complete(j.id, 'w1', 'success', { status: 'success' });
        const after = await mustGet(j.id);
        assert.equal(after.status, 'queued');
        assert.equal(after.attempts, 1, 'the attempt is recorded all the same');
        assert.equal(await store.renewLeases('w2', clock.now(), LEASE_MS), 1, 'still held by w2');
      });

      it('applies many completions in one call', async () => {
        const made: Job[] = [];
        for (let i = 0; i < 3; i++) made.push(await create());
        await store.claimDue('w1', clock.now(), LEASE_MS, 10);
        await store.markRunning(ids(made), 'w1', clock.now());
        const steps: NextStep[] = [{ status: 'success' }, { status: 'failed' }, { status: 'retrying', next_attempt_at: clock.now() + SECOND }];
        const outcomes: AttemptOutcome[] = ['success', 'permanent_error', 'retryable_error'];
        await store.completeAttempts(
          made.map((j, i) => ({ attempt: attemptOf(j.id, 1, outcomes[i]!, clock.now()), owner: 'w1', next: steps[i]! })),
          clock.now(),
        );
        const statuses = await Promise.all(made.map(async (j) => (await mustGet(j.id)).status));
        assert.deepEqual(statuses, ['success', 'failed', 'retrying']);
      });

      it('skips the attempt of a job that no longer exists without failing the others', async () => {
        const gone = await running((await create()).id);
        await store.cancelJob(gone.id, clock.now());
        clock.advance(1);
        assert.equal(await store.pruneTerminal(clock.now(), 10), 1);
        const live = await running((await create()).id);
        await store.completeAttempts(
          [
            { attempt: attemptOf(gone.id, 1, 'success', clock.now()), owner: 'w1', next: { status: 'success' } },
            { attempt: attemptOf(live.id, 1, 'success', clock.now()), owner: 'w1', next: { status: 'success' } },
          ],
          clock.now(),
        );
        assert.equal(await store.getJob(gone.id), null);
        assert.equal((await mustGet(live.id)).status, 'success');
      });
    });

    // ── release / renewLeases / recoverLeases / promoteDue ─────────────────────────────────────
    describe('release', () => {
      it('gives a running job back as queued when it has made no attempts', async () => {
        const j = await running((await create()).id);
        await store.release([j.id], 'w1', clock.now());
        const after = await mustGet(j.id);
        assert.equal(after.status, 'queued');
        assert.deepEqual(ids(await store.claimDue('w2', clock.now(), LEASE_MS, 10)), [j.id]);
      });

      it('gives a running job back as retrying when it has made attempts', async () => {
        const j = await running((await create()).id);
        await complete(j.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: clock.now() });
        await running(j.id);
        await store.release([j.id], 'w1', clock.now());
        assert.equal((await mustGet(j.id)).status, 'retrying');
        assert.deepEqual(ids(await store.claimDue('w2', clock.now(), LEASE_MS, 10)), [j.id]);
      });

      it('gives a held waiting job back with its status', async () => {
        const j = await create();
        await claimOnly(j.id, 'w1');
        await store.release([j.id], 'w1', clock.now());
        assert.equal((await mustGet(j.id)).status, 'queued');
        assert.equal(await store.nextDueAt(), j.run_at);
      });

      it('moves the due time (and a retrying job next attempt) to dueAt', async () => {
        const q = await create();
        const r = await running((await create()).id);
        await complete(r.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: clock.now() });
        await store.claimDue('w1', clock.now(), LEASE_MS, 10);
        await store.markRunning([r.id], 'w1', clock.now());
        const dueAt = clock.now() + 30 * SECOND;
        await store.release([q.id, r.id], 'w1', clock.now(), dueAt);
        assert.equal((await mustGet(q.id)).next_attempt_at, null);
        const rAfter = await mustGet(r.id);
        assert.equal(rAfter.status, 'retrying');
        assert.equal(rAfter.next_attempt_at, dueAt);
        assert.equal(await store.nextDueAt(), dueAt);
        clock.set(dueAt - 1);
        assert.deepEqual(await store.claimDue('w1', clock.now(), LEASE_MS, 10), []);
        clock.set(dueAt);
        assert.deepEqual(new Set(ids(await store.claimDue('w1', clock.now(), LEASE_MS, 10))), new Set([q.id, r.id]));
      });

      it('only gives back jobs the owner holds', async () => {
        const j = await running((await create()).id, 'w1');
        await store.release([j.id], 'w2', clock.now());
        assert.equal((await mustGet(j.id)).status, 'running');
        assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 1);
      });
    });

    describe('renewLeases', () => {
      it('extends every lease the owner holds and returns how many', async () => {
        for (let i = 0; i < 3; i++) await create();
        await store.claimDue('w1', clock.now(), LEASE_MS, 2);
        await store.claimDue('w2', clock.now(), LEASE_MS, 10);
        clock.advance(LEASE_MS - SECOND);
        assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 2);
        assert.equal(await store.renewLeases('nobody', clock.now(), LEASE_MS), 0);
        clock.advance(2 * SECOND); // w2's lease has expired, w1's has not
        assert.equal(await store.recoverLeases(clock.now()), 1);
        clock.advance(LEASE_MS);
        assert.equal(await store.recoverLeases(clock.now()), 2);
      });
    });

    describe('recoverLeases', () => {
      it('frees only leases that expired before now and returns how many', async () => {
        const a = await running((await create()).id, 'w1');
        clock.advance(10 * SECOND);
        const b = await create();
        await claimOnly(b.id, 'w2');
        clock.set(clock.now() - 10 * SECOND + LEASE_MS); // a's lease expires exactly now
        assert.equal(await store.recoverLeases(clock.now()), 0);
        clock.advance(1);
        assert.equal(await store.recoverLeases(clock.now()), 1);
        const aAfter = await mustGet(a.id);
        assert.equal(aAfter.status, 'queued');
        assert.equal(await store.renewLeases('w2', clock.now(), LEASE_MS), 1, 'b still held');
      });

      it('makes a recovered running job due now: retrying if it made attempts, else queued', async () => {
        const fresh = await running((await create()).id, 'w1');
        const tried = await running((await create()).id, 'w1');
        await complete(tried.id, 'w1', 'retryable_error', { status: 'retrying', next_attempt_at: clock.now() });
        await running(tried.id, 'w1');
        clock.advance(LEASE_MS + HOUR);
        assert.equal(await store.recoverLeases(clock.now()), 2);
        const f = await mustGet(fresh.id);
        const t = await mustGet(tried.id);
        assert.equal(f.status, 'queued');
        assert.equal(t.status, 'retrying');
        assert.equal(t.next_attempt_at, clock.now());
        assert.equal(await store.nextDueAt(), clock.now());
        const again = await store.claimDue('w2', clock.now(), LEASE_MS, 10);
        assert.deepEqual(new Set(ids(again)), new Set([fresh.id, tried.id]), 'delivered again');
      });

      it('keeps the status of a recovered job that was held but not running', async () => {
        const j = await create({ run_at: clock.now() - SECOND });
        await claimOnly(j.id, 'w1');
        clock.advance(LEASE_MS + 1);
        assert.equal(await store.recoverLeases(clock.now()), 1);
        assert.equal((await mustGet(j.id)).status, 'queued');
        assert.equal(await store.nextDueAt(), j.run_at);
      });

      it('frees every held job with all, expired or not', async () => {
        const a = await running((await create()).id, 'w1');
        const b = await create();
        await claimOnly(b.id, 'w2');
        assert.equal(await store.recoverLeases(clock.now(), { all: true }), 2);
        assert.equal((await mustGet(a.id)).status, 'queued');
        assert.equal(await store.recoverLeases(clock.now(), { all: true }), 0);
        assert.equal((await store.claimDue('w3', clock.now(), LEASE_MS, 10)).length, 2);
      });
    });

    describe('promoteDue', () => {
      it('promotes scheduled jobs whose run_at has passed and returns how many', async () => {
        const now = clock.now();
        const a = await create({ run_at: now + SECOND });
        const b = await create({ run_at: now + 2 * SECOND });
        const c = await create({ run_at: now + 3 * SECOND });
        clock.advance(2 * SECOND);
        assert.equal(await store.promoteDue(clock.now()), 2);
        assert.equal((await mustGet(a.id)).status, 'queued');
        assert.equal((await mustGet(b.id)).status, 'queued');
        assert.equal((await mustGet(c.id)).status, 'scheduled');
        assert.equal((await mustGet(b.id)).updated_at, clock.now());
        assert.equal(await store.promoteDue(clock.now()), 0);
      });
    });

    // ── commands ───────────────────────────────────────────────────────────────────────────────
    describe('cancelJob', () => {
      for (const status of ['scheduled', 'queued', 'running', 'retrying'] as const) {
        it(`cancels a ${status} job: status cancelled, completed_at set, lease cleared`, async () => {
          const j = await jobIn(status);
          clock.advance(SECOND);
          const r = await store.cancelJob(j.id, clock.now());
          assert.equal(r.kind, 'ok');
          assert.ok(r.kind === 'ok');
          assert.equal(r.job.status, 'cancelled');
          assert.equal(r.job.completed_at, clock.now());
          assert.equal(r.job.updated_at, clock.now());
          assert.deepEqual(await store.getJob(j.id), r.job);
          assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 0);
          clock.advance(HOUR);
          assert.deepEqual(await store.claimDue('w1', clock.now(), LEASE_MS, 10), []);
        });
      }

      it('cancels a job held in a dispatcher memory', async () => {
        const j = await create();
        await claimOnly(j.id, 'w1');
        const r = await store.cancelJob(j.id, clock.now());
        assert.equal(r.kind, 'ok');
        assert.equal(await store.renewLeases('w1', clock.now(), LEASE_MS), 0);
      });

      for (const status of ['success', 'failed', 'cancelled'] as const) {
        it(`refuses to cancel a ${status} job with a conflict`, async () => {
          const j = await jobIn(status);
          clock.advance(SECOND);
          const r = await store.cancelJob(j.id, clock.now());
          assert.deepEqual(r, { kind: 'conflict', job: j });
          assert.deepEqual(await store.getJob(j.id), j);
        });
      }

      it('answers not_found for an unknown job', async () => {
        assert.deepEqual(await store.cancelJob(uuidv7(), clock.now()), { kind: 'not_found' });
      });
    });

    describe('retryJob', () => {
      for (const status of ['failed', 'cancelled'] as const) {
        it(`requeues a ${status} job with a fresh attempt budget, due now, keeping its history`, async () => {
          const j = await jobIn(status);
          const historyBefore = await store.listAttempts(j.id);
          clock.advance(HOUR);
          const r = await store.retryJob(j.id, clock.now());
          assert.ok(r.kind === 'ok', `got ${r.kind}`);
          assert.equal(r.job.status, 'queued');
          assert.equal(r.job.attempts, 0);
          assert.equal(r.job.completed_at, null);
          assert.equal(r.job.last_error, j.last_error);
          assert.equal(r.job.updated_at, clock.now());
          assert.deepEqual(await store.getJob(j.id), r.job);
          assert.deepEqual(await store.listAttempts(j.id), historyBefore);
          assert.equal(await store.nextDueAt(), clock.now());
          assert.deepEqual(ids(await store.claimDue('w9', clock.now(), LEASE_MS, 10)), [j.id]);
        });
      }

      it('keeps last_error of a failed job it requeues', async () => {
        const j = await jobIn('failed');
        assert.equal(j.last_error, 'HTTP 400');
        const r = await store.retryJob(j.id, clock.now());
        assert.ok(r.kind === 'ok');
        assert.equal(r.job.last_error, 'HTTP 400');
      });

      for (const status of ['scheduled', 'queued', 'running', 'retrying', 'success'] as const) {
        it(`refuses to retry a ${status} job with a conflict`, async () => {
          const j = await jobIn(status);
          const r = await store.retryJob(j.id, clock.now());
          assert.deepEqual(r, { kind: 'conflict', job: j });
          assert.deepEqual(await store.getJob(j.id), j);
        });
      }

      it('answers not_found for an unknown job', async () => {
        assert.deepEqual(await store.retryJob(uuidv7(), clock.now()), { kind: 'not_found' });
      });
    });

    // ── API keys ───────────────────────────────────────────────────────────────────────────────
    describe('api keys', () => {
      const HASH_A = 'a'.repeat(64);
      const HASH_B = 'b'.repeat(64);

      it('stores a key and reads it back by id, unrevoked', async () => {
        assert.equal(await store.createApiKey({ id: 'k1', tenant_id: 'acme', key_hash: HASH_A, label: 'ci', created_at: clock.now() }), true);
        assert.deepEqual(await store.getApiKey('k1'), {
          id: 'k1', tenant_id: 'acme', key_hash: HASH_A, label: 'ci', created_at: clock.now(), revoked_at: null,
        });
      });

      it('stores an admin key with a null tenant', async () => {
        await store.createApiKey({ id: 'adm', tenant_id: null, key_hash: HASH_A, label: null, created_at: clock.now() });
        assert.equal((await store.getApiKey('adm'))?.tenant_id, null);
      });

      it('returns null for a key that does not exist', async () => {
        assert.equal(await store.getApiKey('nope'), null);
      });

      it('refuses a second key with an existing id and keeps the first', async () => {
        await store.createApiKey({ id: 'k1', tenant_id: 'acme', key_hash: HASH_A, label: null, created_at: clock.now() });
        assert.equal(await store.createApiKey({ id: 'k1', tenant_id: 'evil', key_hash: HASH_B, label: null, created_at: clock.now() }), false);
        const k = await store.getApiKey('k1');
        assert.equal(k?.tenant_id, 'acme');
        assert.equal(k?.key_hash, HASH_A);
      });

      it('lists every key oldest first, revoked ones included', async () => {
        await store.createApiKey({ id: 'k2', tenant_id: 'b', key_hash: HASH_B, label: null, created_at: clock.now() + 1 });
        await store.createApiKey({ id: 'k1', tenant_id: 'a', key_hash: HASH_A, label: null, created_at: clock.now() });
        await store.revokeApiKey('k1', clock.now());
        assert.deepEqual((await store.listApiKeys()).map((k) => [k.id, k.revoked_at]), [['k1', clock.now()], ['k2', null]]);
      });

      it('revokes a key once: a second revoke keeps the first revoked_at', async () => {
        await store.createApiKey({ id: 'k1', tenant_id: 'a', key_hash: HASH_A, label: null, created_at: clock.now() });
        const first = await store.revokeApiKey('k1', clock.now());
        assert.equal(first?.revoked_at, clock.now());
        const at = clock.now();
        clock.advance(HOUR);
        assert.equal((await store.revokeApiKey('k1', clock.now()))?.revoked_at, at);
        assert.equal((await store.getApiKey('k1'))?.revoked_at, at);
      });

      it('answers null when revoking a key that does not exist', async () => {
        assert.equal(await store.revokeApiKey('nope', clock.now()), null);
      });
    });

    // ── housekeeping ───────────────────────────────────────────────────────────────────────────
    describe('pruneTerminal', () => {
      it('deletes terminal jobs completed before the cutoff, with their attempts, and leaves the rest', async () => {
        const old = [await jobIn('success'), await jobIn('failed'), await jobIn('cancelled')];
        const waiting = [await jobIn('scheduled'), await jobIn('queued'), await jobIn('running'), await jobIn('retrying')];
        clock.advance(HOUR);
        const recent = await jobIn('success');
        const removed = await store.pruneTerminal(clock.now(), 100);
        assert.equal(removed, 3);
        for (const j of old) {
          assert.equal(await store.getJob(j.id), null);
          assert.deepEqual(await store.listAttempts(j.id), []);
        }
        for (const j of [...waiting, recent]) assert.ok(await store.getJob(j.id));
        assert.equal((await store.listAttempts(waiting[3]!.id)).length, 1, 'a waiting job keeps its attempts');
        assert.equal((await store.listAttempts(recent.id)).length, 1);
      });

      it('deletes at most limit jobs per call', async () => {
        for (let i = 0; i < 5; i++) await jobIn('success');
        clock.advance(1);
        assert.equal(await store.pruneTerminal(clock.now(), 2), 2);
        assert.equal(await store.pruneTerminal(clock.now(), 2), 2);
        assert.equal(await store.pruneTerminal(clock.now(), 2), 1);
        assert.equal(await store.pruneTerminal(clock.now(), 2), 0);
      });

      it('keeps a retried job that was once terminal', async () => {
        const j = await jobIn('failed');
        await store.retryJob(j.id, clock.now());
        clock.advance(HOUR);
        assert.equal(await store.pruneTerminal(clock.now(), 100), 0);
      });
    });

    // ── bulk commands ──────────────────────────────────────────────────────────────────────────
    describe('bulk commands', () => {
      /** A job failed by its last attempt, with that attempt's fields as given. */
      async function failedWith(over: Partial<NewJob> = {}, attempt: Partial<Attempt> = {}): Promise<Job> {
        const j = await running((await create(over)).id);
        await store.completeAttempts(
          [{ attempt: attemptOf(j.id, 1, 'permanent_error', clock.now(), attempt), owner: 'w1', next: { status: 'failed' } }],
          clock.now(),
        );
        return mustGet(j.id);
      }

      function step(over: Partial<BulkStep> = {}): BulkStep {
        return { action: 'retry', selector: {}, chunk: 500, limit: null, progress: BULK_START, apply: true, ...over };
      }

      /** Runs steps until the walk is over (bounded), returning every job touched and the progress. */
      async function runAll(over: Partial<BulkStep> = {}): Promise<{ ids: string[]; progress: BulkProgress; steps: number }> {
        let progress = over.progress ?? BULK_START;
        const touched: string[] = [];
        let steps = 0;
        while (!progress.done) {
          assert.ok(++steps <= 1000, 'the walk ends');
          const r = await store.bulkStep(step({ ...over, progress }), clock.now());
          touched.push(...ids(r.jobs));
          progress = r.progress;
        }
        return { ids: touched, progress, steps };
      }

      const sorted = (xs: string[]) => [...xs].sort();

      it('retries every failed job the way retryJob does: queued, fresh budget, due now, history kept', async () => {
        const a = await jobIn('failed');
        const b = await jobIn('failed');
        const others: Job[] = [];
        for (const st of ['queued', 'success', 'cancelled', 'retrying'] as const) others.push(await jobIn(st));
        const history = await store.listAttempts(a.id);
        clock.advance(HOUR);
        const { ids: retried, progress } = await runAll();
        assert.deepEqual(sorted(retried), sorted([a.id, b.id]));
        assert.equal(progress.tally.jobs, 2);
        assert.deepEqual(progress.tally.destinations, { 'https://example.com': 2 });
        for (const id of [a.id, b.id]) {
          const j = await mustGet(id);
          assert.equal(j.status, 'queued');
          assert.equal(j.attempts, 0);
          assert.equal(j.completed_at, null);
          assert.equal(j.last_error, 'HTTP 400');
          assert.equal(j.updated_at, clock.now());
        }
        assert.deepEqual(await store.listAttempts(a.id), history);
        for (const o of others) assert.deepEqual(await mustGet(o.id), o);
        assert.deepEqual(sorted(ids(await store.claimDue('w9', clock.now(), LEASE_MS, 10))), sorted([a.id, b.id, others[0]!.id, others[3]!.id]), 'the retrying job is due by now too');
      });

      it('acts on at most chunk jobs per step and on each job once across the steps', async () => {
        const failed = [];
        for (let i = 0; i < 7; i++) failed.push((await jobIn('failed')).id);
        const { ids: retried, steps, progress } = await runAll({ chunk: 2 });
        assert.deepEqual(sorted(retried), sorted(failed));
        assert.equal(new Set(retried).size, 7);
        assert.ok(steps >= 4, `${steps} steps`);
        assert.equal(progress.tally.jobs, 7);
      });

      it('does not retry a job twice in one command when it fails again during the walk', async () => {
        const first = await jobIn('failed');
        await jobIn('failed');
        const r1 = await store.bulkStep(step({ chunk: 1 }), clock.now());
        assert.deepEqual(ids(r1.jobs), [first.id]);
        // the retried job is delivered and fails again before the command goes on
        await complete((await running(first.id)).id, 'w1', 'permanent_error', { status: 'failed' });
        assert.equal((await mustGet(first.id)).status, 'failed');
        const rest = await runAll({ chunk: 1, progress: r1.progress });
        assert.ok(!rest.ids.includes(first.id));
        assert.equal(rest.ids.length, 1);
      });

      it('stops at the limit, across steps', async () => {
        for (let i = 0; i < 5; i++) await jobIn('failed');
        const { ids: retried, progress } = await runAll({ chunk: 2, limit: 3 });
        assert.equal(retried.length, 3);
        assert.equal(progress.tally.jobs, 3);
        assert.equal((await store.countByStatus()).failed, 2);
      });

      it('selects by tenant, type, destination origin, failure time, last error kind and last status code', async () => {
        const base = await failedWith();
        const tenantB = await failedWith({ tenant_id: 'tenant-b' });
        const typeB = await failedWith({ type: 'invoice.paid' });
        const port = await failedWith({ destination: { url: 'https://example.com:8443/hook', method: 'POST', timeout_ms: 5000, headers: {} } });
        const otherHost = await failedWith({ destination: { url: 'https://other.example/hook?x=1', method: 'POST', timeout_ms: 5000, headers: {} } });
        const timeout = await failedWith({}, { error_kind: 'timeout', status_code: null, error: 'timed out' });
        clock.advance(HOUR);
        const late = await failedWith({}, { status_code: 410, error: 'HTTP 410' });
        const cases: [JobSelector, Job[]][] = [
          [{ tenant_id: 'tenant-b' }, [tenantB]],
          [{ type: 'invoice.paid' }, [typeB]],
          [{ origin: 'https://example.com:8443' }, [port]],
          [{ origin: 'https://other.example' }, [otherHost]],
          [{ origin: 'https://example.com' }, [base, tenantB, typeB, timeout, late]],
          [{ error_kind: 'timeout' }, [timeout]],
          [{ last_status_code: 410 }, [late]],
          [{ completed_from: late.completed_at as number }, [late]],
          [{ completed_before: clock.now() }, [base, tenantB, typeB, port, otherHost, timeout]],
          [{ tenant_id: 'tenant-a', origin: 'https://example.com', error_kind: 'http', completed_before: clock.now() }, [base, typeB]],
        ];
        for (const [selector, expected] of cases) {
          const { ids: counted, progress } = await runAll({ selector, apply: false });
          assert.deepEqual(sorted(counted), sorted(ids(expected)), JSON.stringify(selector));
          assert.equal(progress.tally.jobs, expected.length);
        }
        assert.equal((await store.countByStatus()).failed, 7, 'counting changed nothing');
      });

      it('counts without changing anything when apply is false', async () => {
        const a = await jobIn('failed');
        const { ids: counted, progress } = await runAll({ apply: false, chunk: 1 });
        assert.deepEqual(counted, [a.id]);
        assert.equal(progress.tally.jobs, 1);
        assert.deepEqual(await mustGet(a.id), a);
      });

      it('retries cancelled jobs when the selector names that status', async () => {
        const c = await jobIn('cancelled');
        const f = await jobIn('failed');
        const { ids: retried } = await runAll({ selector: { statuses: ['cancelled'] } });
        assert.deepEqual(retried, [c.id]);
        assert.equal((await mustGet(f.id)).status, 'failed');
      });

      it('names at most MAX_TALLY_ORIGINS destinations and still counts every job', async () => {
        for (let i = 0; i < MAX_TALLY_ORIGINS + 2; i++) {
          await failedWith({ destination: { url: `https://h${i}.example/hook`, method: 'POST', timeout_ms: 5000, headers: {} } });
        }
        const { progress } = await runAll({ apply: false });
        assert.equal(progress.tally.jobs, MAX_TALLY_ORIGINS + 2);
        assert.equal(Object.keys(progress.tally.destinations).length, MAX_TALLY_ORIGINS);
      });

      it('cancels scheduled, queued and retrying jobs, held ones included, and leaves running and terminal jobs', async () => {
        const waiting: Job[] = [];
        for (const st of ['scheduled', 'queued', 'retrying'] as const) waiting.push(await jobIn(st));
        const held = await create();
        await claimOnly(held.id, 'w2');
        const untouched: Job[] = [];
        for (const st of ['running', 'success', 'failed', 'cancelled'] as const) untouched.push(await jobIn(st));
        clock.advance(SECOND);
        const { ids: cancelled, progress } = await runAll({ action: 'cancel', chunk: 1 });
        assert.deepEqual(sorted(cancelled), sorted([...ids(waiting), held.id]));
        assert.equal(progress.tally.jobs, 4);
        for (const id of cancelled) {
          const j = await mustGet(id);
          assert.equal(j.status, 'cancelled');
          assert.equal(j.completed_at, clock.now());
        }
        assert.deepEqual(await store.claimDue('w9', clock.now(), LEASE_MS, 10), []);
        assert.equal(await store.renewLeases('w2', clock.now(), LEASE_MS), 0, 'the held job lost its lease');
        for (const u of untouched) assert.deepEqual(await mustGet(u.id), u);
      });

      it('cancels only the statuses the selector names', async () => {
        const scheduled = await jobIn('scheduled');
        const queued = await jobIn('queued');
        const { ids: cancelled } = await runAll({ action: 'cancel', selector: { statuses: ['scheduled'] } });
        assert.deepEqual(cancelled, [scheduled.id]);
        assert.equal((await mustGet(queued.id)).status, 'queued');
      });

      it('starts a command record once; the same request resumes it, another request conflicts', async () => {
        const op = { scope: 'tenant-a', key: 'k1', request_hash: 'h1', expires_at: clock.now() + HOUR };
        assert.deepEqual(await store.beginBulk(op, clock.now()), { kind: 'started', progress: BULK_START });
        assert.deepEqual(await store.beginBulk(op, clock.now()), { kind: 'resumed', progress: BULK_START });
        assert.deepEqual(await store.beginBulk({ ...op, request_hash: 'h2' }, clock.now()), { kind: 'conflict' });
        assert.deepEqual(await store.beginBulk({ ...op, scope: 'tenant-b', request_hash: 'h2' }, clock.now()), { kind: 'started', progress: BULK_START });
      });

      it('keeps a command progress in its record, so calls sharing it act on each job once', async () => {
        for (let i = 0; i < 5; i++) await jobIn('failed');
        const operation = { scope: '*', key: 'replay-1' };
        await store.beginBulk({ ...operation, request_hash: 'h', expires_at: clock.now() + HOUR }, clock.now());
        // two callers, each passing the progress it started from: the record's wins
        const a = await store.bulkStep(step({ chunk: 2, operation }), clock.now());
        const b = await store.bulkStep(step({ chunk: 2, operation }), clock.now());
        assert.equal(a.jobs.length, 2);
        assert.equal(b.jobs.length, 2);
        assert.equal(new Set([...ids(a.jobs), ...ids(b.jobs)]).size, 4);
        assert.equal(b.progress.tally.jobs, 4);
        const rest = await runAll({ chunk: 2, operation });
        assert.equal(rest.ids.length, 1);
        assert.equal(rest.progress.tally.jobs, 5);
        const again = await store.beginBulk({ ...operation, request_hash: 'h', expires_at: clock.now() + HOUR }, clock.now());
        assert.ok(again.kind === 'resumed');
        assert.equal(again.progress.done, true);
        assert.equal(again.progress.tally.jobs, 5);
        // a step on a finished record does nothing
        const after = await store.bulkStep(step({ operation }), clock.now());
        assert.deepEqual(after.jobs, []);
      });

      it('replaces an expired command record, and pruneExpiredKeys deletes expired ones', async () => {
        const op = { scope: '*', key: 'k', request_hash: 'h1', expires_at: clock.now() + SECOND };
        await store.beginBulk(op, clock.now());
        clock.advance(SECOND);
        assert.equal((await store.beginBulk({ ...op, request_hash: 'h2', expires_at: clock.now() + SECOND }, clock.now())).kind, 'started');
        clock.advance(SECOND);
        assert.equal(await store.pruneExpiredKeys(clock.now()), 1);
        assert.equal(await store.pruneExpiredKeys(clock.now()), 0);
      });

      it('rejects a chunk outside 1..1000', async () => {
        await assert.rejects(store.bulkStep(step({ chunk: 0 }), clock.now()), RangeError);
        await assert.rejects(store.bulkStep(step({ chunk: 1001 }), clock.now()), RangeError);
      });
    });

    describe('pruneExpiredKeys', () => {
      it('deletes idempotency and dedupe records that expired and returns how many', async () => {
        const now = clock.now();
        await create({ idempotency_key: 'short', idempotency_hash: 'h', idempotency_expires_at: now + SECOND });
        await create({ dedupe_hash: 'short', dedupe_expires_at: now + SECOND });
        const long = await create({
          idempotency_key: 'long', idempotency_hash: 'h', idempotency_expires_at: now + HOUR,
          dedupe_hash: 'long', dedupe_expires_at: now + HOUR,
        });
        assert.equal(await store.pruneExpiredKeys(now), 0);
        clock.advance(SECOND);
        assert.equal(await store.pruneExpiredKeys(clock.now()), 2);
        assert.equal(await store.pruneExpiredKeys(clock.now()), 0);
        // The unexpired records still answer.
        const [r] = await store.createJobs(
          [newJob(clock.now(), { idempotency_key: 'long', idempotency_hash: 'h', idempotency_expires_at: now + HOUR })],
          clock.now(),
        );
        assert.equal(expectJob(r, 'idempotent_replay').id, long.id);
        const [d] = await store.createJobs([newJob(clock.now(), { dedupe_hash: 'long', dedupe_expires_at: now + HOUR })], clock.now());
        assert.equal(expectJob(d, 'deduplicated').id, long.id);
        // The expired ones are gone: the same key makes a new job.
        const [n] = await store.createJobs(
          [newJob(clock.now(), { idempotency_key: 'short', idempotency_hash: 'h', idempotency_expires_at: clock.now() + HOUR })],
          clock.now(),
        );
        assert.equal(n?.kind, 'created');
      });
    });

    describe('trace context', () => {
      const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const TS = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';

      it('keeps a job\'s traceparent and tracestate through create, get, list, claim and completion', async () => {
        const job = await create({ traceparent: TP, tracestate: TS });
        assert.equal(job.traceparent, TP);
        assert.equal(job.tracestate, TS);
        const got = await mustGet(job.id);
        assert.equal(got.traceparent, TP);
        assert.equal(got.tracestate, TS);
        const page = await store.listJobs({}, 10, null);
        assert.equal(page.data.find((j) => j.id === job.id)?.traceparent, TP);
        const claimed = await claimOnly(job.id, 'w1');
        assert.equal(claimed.traceparent, TP);
        assert.equal(claimed.tracestate, TS);
        await store.completeAttempts(
          [{ attempt: attemptOf(job.id, 1, 'retryable_error', clock.now()), owner: 'w1', next: { status: 'retrying', next_attempt_at: clock.now() } }],
          clock.now(),
        );
        const again = await claimOnly(job.id, 'w2');
        assert.equal(again.traceparent, TP, 'a retry is claimed with the same trace context');
        assert.equal(again.tracestate, TS);
      });

      it('stores null for a job without a trace', async () => {
        const job = await create();
        assert.equal(job.traceparent, null);
        assert.equal(job.tracestate, null);
        const got = await mustGet(job.id);
        assert.equal(got.traceparent, null);
        assert.equal(got.tracestate, null);
      });

      it('answers an idempotent replay with the original job\'s trace context, not the replay\'s', async () => {
        const keyed = { idempotency_key: 'k', idempotency_hash: 'h', idempotency_expires_at: clock.now() + HOUR };
        const first = await create({ ...keyed, traceparent: TP, tracestate: null });
        const other = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
        const [r] = await store.createJobs([newJob(clock.now(), { ...keyed, traceparent: other })], clock.now());
        const replay = expectJob(r, 'idempotent_replay');
        assert.equal(replay.id, first.id);
        assert.equal(replay.traceparent, TP);
        assert.equal(replay.tracestate, null);
      });
    });

    // ── destination leases (what every driver shares; PostgreSQL's own rules: postgres-lanes.test.ts) ──
    describe('syncLanes / loadLanes', () => {
      const lane = (origin: string, keep: boolean) => ({
        tenant_id: 'tenant-a', origin, keep, circuit: 'closed' as const, failures: 0, open_until: 0, cooldown_ms: null, tokens: 1, tokens_at: clock.now(),
      });

      it('lets a lone owner keep every lane it keeps and none it gives up', async () => {
        const kept = await store.syncLanes('w1', clock.now(), LEASE_MS, [lane('https://a.example', true), lane('https://b.example', false)]);
        assert.deepEqual(kept, [{ tenant_id: 'tenant-a', origin: 'https://a.example' }]);
        assert.deepEqual(await store.syncLanes('w1', clock.now(), LEASE_MS, []), []);
      });

      it('wakes a lone owner for what it may claim as for any waiting job', async () => {
        const j = await create({ run_at: clock.now() + SECOND });
        assert.equal(await store.nextDueAt('w1', clock.now()), j.run_at);
        assert.equal(await store.nextDueAt(), j.run_at);
      });
    });

    scheduleContract(() => store);
  });
}
