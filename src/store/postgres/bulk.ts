// Bulk commands for the PostgreSQL driver (see BulkStep and Store.bulkStep in ../store.ts), with the
// SQLite driver's semantics (../sqlite/bulk.ts): each selected status is walked in id order over the
// (status, id) or (tenant_id, status, id) index from the cursor "<status index>:<last id examined>",
// examining at most 4 × chunk rows and changing at most chunk jobs per step.
//
// Several instances share the database:
// - beginBulk: INSERT … ON CONFLICT DO UPDATE that only replaces an expired record. ON CONFLICT waits
//   for a concurrent transaction inserting the same key; the loser then reads the winner's record
//   with a statement of its own (a fresh snapshot, FOR UPDATE), so one caller starts and the other
//   resumes (or conflicts).
// - bulkStep with an operation locks the record (FOR UPDATE) before it reads the cursor, so steps
//   sharing a record run one after another and each goes on from where the previous one stopped.
// - The changes are guarded on the status the command selects, so a job that changed since the scan
//   (or that a concurrent step without a record took) is left alone.
// The destination-origin filter is computed in JS on the scanned rows with `new URL(url).origin`
// (originOf, the rate limiter's own rule); a row that does not match still counts as examined.

import type pg from 'pg';
import { addToTally, BULK_START, BULK_STATUSES, originOf, type BulkProgress, type JobSelector } from '../../domain/bulk.js';
import type { OrderingKey } from '../../domain/ordering.js';
import type { BulkBegin, BulkOperationKey, BulkStep, BulkStepResult } from '../store.js';
import { lockKeys, requeue, settle } from './ordering.js';
import { query, transaction, type Queryable, type Sql } from './pool.js';

/** Rows examined per step, per job it may act on (as on SQLite). */
const SCAN_FACTOR = 4;
export const MAX_BULK_CHUNK = 1000;

interface ScanRow {
  id: string;
  tenant_id: string;
  dest_url: string;
  ordering_key: string | null;
  hit: boolean;
}

type Changed = { id: string; tenant_id: string; dest_url: string; ordering_key: string | null };

// Replaces only an expired record; a live one is left (and locked) and read by GET_OP_LOCKED.
const PUT_OP: Sql = {
  text: `
    INSERT INTO bulk_operations AS b (scope, key, request_hash, progress_json, created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5::int8, $6::int8)
    ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
      progress_json = excluded.progress_json, created_at = excluded.created_at, expires_at = excluded.expires_at
    WHERE b.expires_at <= $5::int8
    RETURNING 1`,
};
const GET_OP_LOCKED: Sql = {
  text: `SELECT request_hash, progress_json, expires_at FROM bulk_operations WHERE scope = $1 AND key = $2 FOR UPDATE`,
};
const SAVE_PROGRESS: Sql = {
  text: `UPDATE bulk_operations SET progress_json = $3 WHERE scope = $1 AND key = $2`,
};

// The same changes as the one-job retry and cancel (commands.ts), guarded on a status the command
// selects ($3). Rows are locked in id order first, so two bulk steps never deadlock each other.
const guarded = (set: string): Sql => ({
  text: `
    WITH t AS (SELECT id FROM jobs WHERE id = ANY($1::text[]) AND status = ANY($3::text[]) ORDER BY id FOR UPDATE)
    UPDATE jobs SET ${set}
    FROM t WHERE jobs.id = t.id AND jobs.status = ANY($3::text[])
    RETURNING jobs.id, jobs.tenant_id, jobs.dest_url, jobs.ordering_key`,
});
const RETRY = guarded(`status = 'queued', due_at = $2::int8, run_at = least(run_at, $2::int8), attempts = 0, completed_at = NULL,
      next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2::int8`);
const CANCEL = guarded(`status = 'cancelled', completed_at = $2::int8, updated_at = $2::int8, next_attempt_at = NULL,
      lease_owner = NULL, lease_expires_at = NULL`);

export const PRUNE_BULK_OPERATIONS = `
  DELETE FROM bulk_operations WHERE (scope, key) IN (
    SELECT scope, key FROM bulk_operations WHERE expires_at <= $1::int8
    FOR UPDATE SKIP LOCKED)
  RETURNING 1`;

export async function beginBulk(
  pool: pg.Pool,
  op: BulkOperationKey & { request_hash: string; expires_at: number },
  now: number,
): Promise<BulkBegin> {
  return transaction(pool, async (client) => {
    const put = await query(client, PUT_OP, [op.scope, op.key, op.request_hash, JSON.stringify(BULK_START), now, op.expires_at]);
    if (put.rowCount === 1) return { kind: 'started', progress: BULK_START };
    // a live record: ON CONFLICT waited for its writer, and this statement's snapshot sees it
    const row = (await query<{ request_hash: string; progress_json: string }>(client, GET_OP_LOCKED, [op.scope, op.key])).rows[0];
    if (!row) throw new Error(`bulk operation record ${op.scope}/${op.key} vanished while held`);
    return row.request_hash === op.request_hash ? { kind: 'resumed', progress: JSON.parse(row.progress_json) as BulkProgress } : { kind: 'conflict' };
  });
}

/** A dry run only reads: no transaction, no record. */
export async function bulkStep(pool: pg.Pool, step: BulkStep, now: number): Promise<BulkStepResult> {
  if (!Number.isInteger(step.chunk) || step.chunk < 1 || step.chunk > MAX_BULK_CHUNK) {
    throw new RangeError(`chunk must be an integer in 1..${MAX_BULK_CHUNK}, got ${step.chunk}`);
  }
  return step.apply ? transaction(pool, (client) => stepOn(client, step, now)) : stepOn(pool, step, now);
}

async function stepOn(db: Queryable, step: BulkStep, now: number): Promise<BulkStepResult> {
  const op = step.apply ? step.operation : undefined;
  let progress = step.progress;
  if (op) {
    const row = (await query<{ progress_json: string }>(db, GET_OP_LOCKED, [op.scope, op.key])).rows[0];
    if (row) progress = JSON.parse(row.progress_json) as BulkProgress;
  }
  if (progress.done) return { progress, jobs: [] };

  const statuses = step.selector.statuses ?? BULK_STATUSES[step.action].default;
  const budget = Math.min(step.chunk, step.limit === null ? Infinity : step.limit - progress.tally.jobs);
  let [index, after] = parseCursor(progress.cursor);
  let scanLeft = step.chunk * SCAN_FACTOR;
  const scan = scanFor(step.selector);
  const taken: ScanRow[] = [];
  while (index < statuses.length && taken.length < budget && scanLeft > 0) {
    const { rows } = await query<ScanRow>(db, scan, [...scan.params, statuses[index], after, scanLeft]);
    let full = false;
    for (const row of rows) {
      scanLeft--;
      after = row.id;
      if (row.hit && (step.selector.origin === undefined || originOf(row.dest_url) === step.selector.origin)) taken.push(row);
      if (taken.length >= budget) {
        full = true;
        break;
      }
    }
    if (!full && scanLeft > 0) {
      // fewer rows than asked for: this status is walked to its end
      index++;
      after = '';
    }
  }

  let changed: Changed[] = taken;
  if (step.apply && taken.length > 0) {
    // keyed jobs as the one-job commands treat them: their keys' locks before any row (ordering.ts)
    const keyOf = (r: { tenant_id: string; ordering_key: string | null }): OrderingKey[] =>
      r.ordering_key === null ? [] : [{ tenant_id: r.tenant_id, key: r.ordering_key }];
    await lockKeys(db, taken.flatMap(keyOf));
    const { rows } = await query<Changed>(db, step.action === 'retry' ? RETRY : CANCEL, [taken.map((r) => r.id), now, statuses]);
    // in the walk's order, as the SQLite driver answers
    const byId = new Map(rows.map((r) => [r.id, r]));
    changed = taken.flatMap((t) => byId.get(t.id) ?? []);
    if (step.action === 'retry') {
      for (const r of changed) for (const key of keyOf(r)) await requeue(db, r.id, key);
    } else {
      await settle(db, changed.flatMap(keyOf), now);
    }
  }
  const tally = addToTally(progress.tally, changed.map((j) => j.dest_url));
  const done = index >= statuses.length || (step.limit !== null && tally.jobs >= step.limit);
  const next: BulkProgress = { cursor: `${index}:${after}`, done, tally };
  if (op) await query(db, SAVE_PROGRESS, [op.scope, op.key, JSON.stringify(next)]);
  return { progress: next, jobs: changed.map((j) => ({ id: j.id, tenant_id: j.tenant_id })) };
}

/**
 * The scan for one selector: its own parameters first, then status, after and limit. Every filter
 * but the origin is SQL (a NULL column matches nothing, as on SQLite); the origin is checked in JS.
 */
function scanFor(sel: JobSelector): Sql & { params: unknown[] } {
  const params: unknown[] = [];
  const p = (value: unknown, type: string) => {
    params.push(value);
    return `$${params.length}::${type}`;
  };
  const hit: string[] = [];
  if (sel.type !== undefined) hit.push(`j.type = ${p(sel.type, 'text')}`);
  if (sel.completed_from !== undefined) hit.push(`j.completed_at >= ${p(sel.completed_from, 'int8')}`);
  if (sel.completed_before !== undefined) hit.push(`j.completed_at < ${p(sel.completed_before, 'int8')}`);
  if (sel.created_from !== undefined) hit.push(`j.created_at >= ${p(sel.created_from, 'int8')}`);
  if (sel.created_before !== undefined) hit.push(`j.created_at < ${p(sel.created_before, 'int8')}`);
  if (sel.last_status_code !== undefined) hit.push(`j.last_status_code = ${p(sel.last_status_code, 'int4')}`);
  // the job's last attempt (attempts_job is (job_id, id))
  if (sel.error_kind !== undefined) {
    hit.push(`(SELECT a.error_kind FROM attempts a WHERE a.job_id = j.id ORDER BY a.id DESC LIMIT 1) = ${p(sel.error_kind, 'text')}`);
  }
  const tenant = sel.tenant_id !== undefined ? `j.tenant_id = ${p(sel.tenant_id, 'text')} AND ` : '';
  const n = params.length;
  return {
    params,
    text: `
      SELECT j.id, j.tenant_id, j.dest_url, j.ordering_key, ${hit.length ? `coalesce((${hit.join(') AND (')}), false)` : 'true'} AS hit
      FROM jobs j
      WHERE ${tenant}j.status = $${n + 1}::text AND j.id > $${n + 2}::text
      ORDER BY j.id LIMIT $${n + 3}::int4`,
  };
}

function parseCursor(cursor: string): [number, string] {
  if (cursor === '') return [0, ''];
  const i = cursor.indexOf(':');
  const index = Number(cursor.slice(0, i));
  if (i < 0 || !Number.isInteger(index) || index < 0) throw new RangeError(`not a bulk cursor: ${cursor}`);
  return [index, cursor.slice(i + 1)];
}
