// What a dispatcher does to jobs: claim due work under a lease, mark it running, record results,
// give it back, keep and recover leases. Each function is ONE statement (atomic without a
// transaction), guarded on the status and lease owner it expects, so instances sharing the
// database never both win a job. `now` is always the caller's.

import type pg from 'pg';
import { realDueAt, type OrderingKey } from '../../domain/ordering.js';
import type { AttemptCompletion, ClaimedJob } from '../store.js';
import { freeDestination, withDestinationLeases } from './lanes.js';
import type { NotifyTarget } from './notifier.js';
import { lockKeys, settle } from './ordering.js';
import { query, transaction, type Sql } from './pool.js';
import { ATTEMPT_COLUMNS, attemptColumnArrays, rowToClaimedJob, type JobRow } from './rows.js';

const WAITING = `status IN ('scheduled','queued','retrying')`;
// A running job given back without an attempt result: retrying if it has made attempts, else queued.
const GIVEN_BACK_STATUS = `CASE WHEN status = 'running' THEN (CASE WHEN attempts > 0 THEN 'retrying' ELSE 'queued' END) ELSE status END`;

// SKIP LOCKED: instances claiming at once each take rows the others have not locked, without
// waiting. A row another instance claimed and committed since this statement's snapshot is
// re-checked against the WHERE after its lock (lease_owner is no longer NULL) and skipped.
const CLAIM: Sql = {
  name: 'pulsegate_claim',
  text: `
    WITH c AS (
      SELECT id FROM jobs
      WHERE ${WAITING} AND lease_owner IS NULL AND due_at <= $1::int8
      ORDER BY due_at, id
      LIMIT $2
      FOR UPDATE SKIP LOCKED)
    UPDATE jobs SET
      lease_owner = $3,
      lease_expires_at = $4::int8,
      status = CASE WHEN jobs.status = 'scheduled' THEN 'queued' ELSE jobs.status END,
      updated_at = CASE WHEN jobs.status = 'scheduled' THEN $1::int8 ELSE jobs.updated_at END
    FROM c WHERE jobs.id = c.id
    RETURNING jobs.*`,
};

// The same claim for one tenant's jobs (jobs_claim_tenant), for claims shared between tenants.
const CLAIM_TENANT: Sql = {
  name: 'pulsegate_claim_tenant',
  text: CLAIM.text.replace('AND due_at <= $1::int8', 'AND tenant_id = $5 AND due_at <= $1::int8'),
};

// With lane leases (lanes.ts): the same claims, keeping to destinations no other instance holds and
// holding the destinations of what they take, in the same statement.
const CLAIM_LANES: Sql = { name: 'pulsegate_claim_lanes', text: withDestinationLeases(CLAIM.text) };
const CLAIM_TENANT_LANES: Sql = { name: 'pulsegate_claim_tenant_lanes', text: withDestinationLeases(CLAIM_TENANT.text) };

// Tenants with waiting jobs no one holds, in tenant order after $1, with each one's earliest due_at:
// a skip scan over jobs_claim_tenant (one index probe per tenant), at most $2 of them.
const NEXT_TENANTS: Sql = {
  name: 'pulsegate_next_tenants',
  text: `
    WITH RECURSIVE t AS (
      (SELECT tenant_id, due_at, 1 AS n FROM jobs
        WHERE ${WAITING} AND lease_owner IS NULL AND tenant_id > $1
        ORDER BY tenant_id, due_at, id LIMIT 1)
      UNION ALL
      SELECT x.tenant_id, x.due_at, t.n + 1 FROM t, LATERAL (
        SELECT tenant_id, due_at FROM jobs
        WHERE ${WAITING} AND lease_owner IS NULL AND tenant_id > t.tenant_id
        ORDER BY tenant_id, due_at, id LIMIT 1) x
      WHERE t.n < $2)
    SELECT tenant_id, due_at FROM t`,
};

/** Tenants visited at most to find the ones with due jobs, and claimed from at most, per claim. */
const FAIR_TENANTS_VISITED = 256;
const FAIR_TENANTS_CLAIMED = 64;

const NEXT_DUE_AT: Sql = {
  name: 'pulsegate_next_due_at',
  text: `SELECT due_at FROM jobs WHERE ${WAITING} AND lease_owner IS NULL ORDER BY due_at, id LIMIT 1`,
};
// Only what $1 may claim at $2: the others' destinations are theirs to wake for (else an instance
// would wake at once, claim nothing and wake again while another delivers a backlog).
const NEXT_DUE_AT_LANES: Sql = {
  name: 'pulsegate_next_due_at_lanes',
  text: NEXT_DUE_AT.text.replace('lease_owner IS NULL', `lease_owner IS NULL AND ${freeDestination('$1', '$2::int8')}`),
};

const MARK_RUNNING: Sql = {
  name: 'pulsegate_mark_running',
  text: `UPDATE jobs SET status = 'running', updated_at = $3 WHERE id = ANY($1::text[]) AND lease_owner = $2 AND ${WAITING}`,
};

// Every result updates its job's counters (the attempt happened); the status, times and lease move
// only while the owner still holds a job nobody ended (a job cancelled mid-flight stays cancelled).
// The attempts are inserted for the jobs the UPDATE found, in input order: a job pruned meanwhile
// loses its attempt instead of failing the batch on the foreign key.
const HELD = `jobs.status IN ('scheduled','queued','retrying','running') AND jobs.lease_owner = c.owner`;
const COMPLETE: Sql = {
  name: 'pulsegate_complete',
  text: `
    WITH c AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::int8[], $7::int8[])
        AS c(id, owner, error, status_code, status, completed_at, next_attempt_at)
    ), u AS (
      UPDATE jobs SET
        attempts = jobs.attempts + 1,
        last_error = c.error,
        last_status_code = c.status_code,
        updated_at = $8::int8,
        status = CASE WHEN ${HELD} THEN c.status ELSE jobs.status END,
        completed_at = CASE WHEN ${HELD} THEN c.completed_at ELSE jobs.completed_at END,
        next_attempt_at = CASE WHEN ${HELD} THEN c.next_attempt_at ELSE jobs.next_attempt_at END,
        due_at = CASE WHEN ${HELD} THEN coalesce(c.next_attempt_at, jobs.due_at) ELSE jobs.due_at END,
        lease_expires_at = CASE WHEN ${HELD} THEN NULL ELSE jobs.lease_expires_at END,
        lease_owner = CASE WHEN ${HELD} THEN NULL ELSE jobs.lease_owner END
      FROM c WHERE jobs.id = c.id
      RETURNING jobs.id)
    INSERT INTO attempts (${ATTEMPT_COLUMNS.join(', ')})
    SELECT ${ATTEMPT_COLUMNS.map((c) => `a.${c}`).join(', ')}
    FROM unnest($9::text[], $10::int4[], $11::int8[], $12::int8[], $13::int8[], $14::text[], $15::text[], $16::int4[], $17::text[], $18::text[])
      WITH ORDINALITY AS a(${ATTEMPT_COLUMNS.join(', ')}, ord)
    WHERE a.job_id IN (SELECT id FROM u)
    ORDER BY a.ord`,
};

const RELEASE: Sql = {
  name: 'pulsegate_release',
  text: `
    UPDATE jobs SET
      status = ${GIVEN_BACK_STATUS},
      due_at = coalesce($4::int8, due_at),
      next_attempt_at = CASE
        WHEN $4::int8 IS NOT NULL AND (status = 'retrying' OR (status = 'running' AND attempts > 0)) THEN $4::int8
        ELSE next_attempt_at END,
      lease_owner = NULL, lease_expires_at = NULL, updated_at = $3::int8
    WHERE id = ANY($1::text[]) AND lease_owner = $2`,
};

// The same, waking the other instances with the earliest due time given back (see notifier.ts):
// a draining instance's jobs are taken over at once, not at the others' next poll.
const RELEASE_NOTIFY: Sql = {
  name: 'pulsegate_release_notify',
  text: `
    WITH r AS (${RELEASE.text} RETURNING due_at)
    SELECT pg_notify($5, $6 || ':' || min(due_at)) FROM r HAVING count(*) > 0`,
};

const RENEW: Sql = {
  name: 'pulsegate_renew',
  text: 'UPDATE jobs SET lease_expires_at = $2::int8 WHERE lease_owner = $1',
};

/** A running job whose dispatcher is gone is due again now; a held waiting job keeps its due time. */
function recoverSql(where: string): string {
  return `
    UPDATE jobs SET
      status = ${GIVEN_BACK_STATUS},
      due_at = CASE WHEN status = 'running' THEN $1::int8 ELSE due_at END,
      next_attempt_at = CASE WHEN status = 'running' AND attempts > 0 THEN $1::int8 ELSE next_attempt_at END,
      lease_owner = NULL, lease_expires_at = NULL, updated_at = $1::int8
    WHERE ${where}`;
}
const RECOVER_EXPIRED: Sql = { text: recoverSql('lease_owner IS NOT NULL AND lease_expires_at < $1::int8') };
const RECOVER_ALL: Sql = { text: recoverSql('lease_owner IS NOT NULL') };

const PROMOTE: Sql = {
  text: `UPDATE jobs SET status = 'queued', updated_at = $1::int8 WHERE status = 'scheduled' AND run_at <= $1::int8`,
};

/**
 * Claims due jobs, shared between tenants: a tenant with a large backlog cannot crowd out another's
 * later job. Tenants with due jobs are taken in turn from `cursor.after` (where the last shared claim
 * stopped, kept by the caller per instance), each gets an equal share of `limit`, and what is left
 * goes oldest due first. Each claim statement is atomic; the claim as a whole need not be.
 */
export async function claimDue(
  pool: pg.Pool,
  owner: string,
  now: number,
  leaseMs: number,
  limit: number,
  cursor: { after: string } = { after: '' },
  laneLeases = false,
): Promise<ClaimedJob[]> {
  if (limit < 1) return [];
  const [claim, claimTenant] = laneLeases ? [CLAIM_LANES, CLAIM_TENANT_LANES] : [CLAIM, CLAIM_TENANT];
  const tenants = await dueTenants(pool, now, cursor.after);
  const args = [now, limit, owner, now + leaseMs];
  let rows: JobRow[];
  if (tenants.length < 2) {
    rows = (await query<JobRow>(pool, claim, args)).rows;
  } else {
    rows = [];
    const share = Math.max(1, Math.ceil(limit / tenants.length));
    for (const tenant of tenants) {
      if (rows.length >= limit) break;
      rows.push(...(await query<JobRow>(pool, claimTenant, [now, Math.min(share, limit - rows.length), owner, now + leaseMs, tenant])).rows);
      cursor.after = tenant;
    }
    if (rows.length < limit) rows.push(...(await query<JobRow>(pool, claim, [now, limit - rows.length, owner, now + leaseMs])).rows);
  }
  // RETURNING order is unspecified.
  rows.sort((a, b) => a.due_at - b.due_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return rows.map(rowToClaimedJob);
}

/** Tenants with due jobs, in turn from `after` (wrapping around once), at most FAIR_TENANTS_CLAIMED. */
async function dueTenants(pool: pg.Pool, now: number, after: string): Promise<string[]> {
  const first = (await query<{ tenant_id: string; due_at: number }>(pool, NEXT_TENANTS, [after, FAIR_TENANTS_VISITED])).rows;
  let seen = first;
  if (after !== '' && first.length < FAIR_TENANTS_VISITED) {
    const wrapped = (await query<{ tenant_id: string; due_at: number }>(pool, NEXT_TENANTS, ['', FAIR_TENANTS_VISITED - first.length])).rows;
    seen = [...first, ...wrapped.filter((t) => t.tenant_id <= after)];
  }
  return seen.filter((t) => t.due_at <= now).slice(0, FAIR_TENANTS_CLAIMED).map((t) => t.tenant_id);
}

export async function nextDueAt(pool: pg.Pool, mayClaim?: { owner: string; now: number }): Promise<number | null> {
  const { rows } = await (mayClaim ? query<{ due_at: number }>(pool, NEXT_DUE_AT_LANES, [mayClaim.owner, mayClaim.now]) : query<{ due_at: number }>(pool, NEXT_DUE_AT));
  return realDueAt(rows[0]?.due_at);
}

export async function markRunning(pool: pg.Pool, ids: string[], owner: string, now: number): Promise<void> {
  if (ids.length > 0) await query(pool, MARK_RUNNING, [ids, owner, now]);
}

export async function completeAttempts(pool: pg.Pool, completions: AttemptCompletion[], now: number): Promise<void> {
  if (completions.length === 0) return;
  const retrying = (c: AttemptCompletion) => c.next.status === 'retrying';
  const ended: OrderingKey[] = [];
  for (const c of completions) if (c.ordering && !retrying(c)) ended.push(c.ordering);
  const values = [
    completions.map((c) => c.attempt.job_id),
    completions.map((c) => c.owner),
    completions.map((c) => c.attempt.error),
    completions.map((c) => c.attempt.status_code),
    completions.map((c) => c.next.status),
    completions.map((c) => (retrying(c) ? null : now)),
    completions.map((c) => (c.next.status === 'retrying' ? c.next.next_attempt_at : null)),
    now,
    ...attemptColumnArrays(completions.map((c) => c.attempt)),
  ];
  if (ended.length === 0) {
    await query(pool, COMPLETE, values);
    return;
  }
  // jobs that end hand their ordering keys on: the keys' locks first (ordering.ts)
  await transaction(pool, async (client) => {
    await lockKeys(client, ended);
    await query(client, COMPLETE, values);
    await settle(client, ended, now);
  });
}

export async function release(pool: pg.Pool, ids: string[], owner: string, now: number, dueAt?: number, notify: NotifyTarget | null = null): Promise<void> {
  if (ids.length === 0) return;
  const values = [ids, owner, now, dueAt ?? null];
  await (notify ? query(pool, RELEASE_NOTIFY, [...values, notify.channel, notify.sender]) : query(pool, RELEASE, values));
}

export async function renewLeases(pool: pg.Pool, owner: string, now: number, leaseMs: number): Promise<number> {
  return (await query(pool, RENEW, [owner, now + leaseMs])).rowCount ?? 0;
}

export async function recoverLeases(pool: pg.Pool, now: number, opts?: { all?: boolean }): Promise<number> {
  return (await query(pool, opts?.all ? RECOVER_ALL : RECOVER_EXPIRED, [now])).rowCount ?? 0;
}

export async function promoteDue(pool: pg.Pool, now: number): Promise<number> {
  return (await query(pool, PROMOTE, [now])).rowCount ?? 0;
}
