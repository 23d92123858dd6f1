// Operator commands on one job: cancel and retry. A command is one statement that
// changes the job if its status allows, and otherwise reads it as it is, so the answer (ok,
// conflict with the current job, not found) is decided atomically.

import type pg from 'pg';
import type { CommandResult } from '../store.js';
import { keysOf, lockKeys, requeue, settle } from './ordering.js';
import { query, transaction, type Queryable, type Sql } from './pool.js';
import { rowToJob, type JobRow } from './rows.js';

/** Wraps an `UPDATE jobs … WHERE id = $1 AND <guard> RETURNING *` so the job comes back either way. */
function command(name: string, update: string): Sql {
  return {
    name,
    text: `
      WITH u AS (${update} RETURNING *)
      SELECT true AS changed, u.* FROM u
      UNION ALL
      SELECT false AS changed, j.* FROM jobs j WHERE j.id = $1 AND NOT EXISTS (SELECT 1 FROM u)`,
  };
}

const CANCEL = command(
  'pulsegate_cancel',
  `UPDATE jobs SET status = 'cancelled', completed_at = $2::int8, updated_at = $2::int8, next_attempt_at = NULL,
     lease_owner = NULL, lease_expires_at = NULL
   WHERE id = $1 AND status IN ('scheduled','queued','running','retrying')`,
);

const RETRY = command(
  'pulsegate_retry',
  `UPDATE jobs SET status = 'queued', due_at = $2::int8, run_at = least(run_at, $2::int8), attempts = 0, completed_at = NULL,
     next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2::int8
   WHERE id = $1 AND status IN ('failed','cancelled')`,
);

const GET_JOB: Sql = { name: 'pulsegate_get_job', text: 'SELECT * FROM jobs WHERE id = $1' };

async function run(db: Queryable, sql: Sql, id: string, now: number): Promise<CommandResult> {
  const { rows } = await query<JobRow & { changed: boolean }>(db, sql, [id, now]);
  const row = rows[0];
  if (!row) return { kind: 'not_found' };
  return row.changed ? { kind: 'ok', job: rowToJob(row) } : { kind: 'conflict', job: rowToJob(row) };
}

/**
 * A job with an ordering key changes under its key's lock (ordering.ts): a cancel moves its line on,
 * a retry puts it at the back of its line. Its key is read first (it never changes).
 */
async function runKeyed(pool: pg.Pool, sql: Sql, id: string, now: number, action: 'cancel' | 'retry'): Promise<CommandResult> {
  const [key] = await keysOf(pool, [id]);
  if (!key) return run(pool, sql, id, now);
  return transaction(pool, async (client) => {
    await lockKeys(client, [key]);
    const res = await run(client, sql, id, now);
    if (res.kind !== 'ok') return res;
    if (action === 'cancel') {
      await settle(client, [key], now);
      return res;
    }
    await requeue(client, id, key);
    const row = (await query<JobRow>(client, GET_JOB, [id])).rows[0];
    return row ? { kind: 'ok', job: rowToJob(row) } : res;
  });
}

export const cancelJob = (pool: pg.Pool, id: string, now: number) => runKeyed(pool, CANCEL, id, now, 'cancel');
export const retryJob = (pool: pg.Pool, id: string, now: number) => runKeyed(pool, RETRY, id, now, 'retry');
