// Retention: deleting old terminal jobs and expired idempotency, dedupe and bulk-command records. Several
// instances may run it at once; SKIP LOCKED splits the work between them instead of queueing them.

import type pg from 'pg';
import { PRUNE_BULK_OPERATIONS } from './bulk.js';
import { query, type Sql } from './pool.js';

// Attempts go with their job (ON DELETE CASCADE). SKIP LOCKED: instances pruning at once split the
// work, and a job some statement holds is left for the next round.
const PRUNE_TERMINAL: Sql = {
  text: `
    DELETE FROM jobs WHERE id IN (
      SELECT id FROM jobs WHERE status IN ('success','failed','cancelled') AND completed_at < $1::int8
      ORDER BY completed_at LIMIT $2
      FOR UPDATE SKIP LOCKED)`,
};

// SKIP LOCKED: a record a create (or a bulk command) is replacing right now is its own (see intake.ts, bulk.ts).
const PRUNE_KEYS: Sql = {
  text: `
    WITH i AS (
      DELETE FROM idempotency_keys WHERE (tenant_id, key) IN (
        SELECT tenant_id, key FROM idempotency_keys WHERE expires_at IS NOT NULL AND expires_at <= $1::int8
        FOR UPDATE SKIP LOCKED)
      RETURNING 1
    ), d AS (
      DELETE FROM dedupe_keys WHERE (tenant_id, hash) IN (
        SELECT tenant_id, hash FROM dedupe_keys WHERE expires_at IS NOT NULL AND expires_at <= $1::int8
        FOR UPDATE SKIP LOCKED)
      RETURNING 1
    ), b AS (${PRUNE_BULK_OPERATIONS})
    SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM d) + (SELECT count(*) FROM b) AS n`,
};

export async function pruneTerminal(pool: pg.Pool, before: number, limit: number): Promise<number> {
  if (limit < 1) return 0;
  return (await query(pool, PRUNE_TERMINAL, [before, limit])).rowCount ?? 0;
}

export async function pruneExpiredKeys(pool: pg.Pool, now: number): Promise<number> {
  return (await query<{ n: number }>(pool, PRUNE_KEYS, [now])).rows[0]?.n ?? 0;
}
