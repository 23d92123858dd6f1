// Lanes across instances: destination leases. A destination (tenant, origin) is delivered by one
// instance at a time, the one holding its row in destination_leases unexpired; that instance's
// memory lane then paces it exactly (slots, tokens, circuit), for the cluster as a whole.
//
//   free ──(a claim takes one of its jobs: same statement)──────────────▶ held by X until now + lease
//   held by X ──(X's claim or syncLanes, before expiry)──────────────────▶ held by X, expiry pushed on
//   held by X ──(syncLanes: X's lane idle, or X draining)────────────────▶ free (owner NULL, state written)
//   held by X ──(expiry passes: X died or lost the database)─────────────▶ free for any claim
//
// The lane's state (circuit, cool-down, bucket level) is written by every sync and read by the next
// owner when its claim first takes the destination, so a hand-over keeps an open circuit open and a
// spent bucket spent. Claims keep to destinations no other instance holds with one added predicate
// and one CTE (withDestinationLeases), so the fair per-tenant claim in dispatch.ts is unchanged.

import type pg from 'pg';
import type { LaneLease, LaneSync } from '../store.js';
import type { NotifyTarget } from './notifier.js';
import { query, type Sql } from './pool.js';

/** A job's destination is not held by another owner ($owner) unexpired at $now. */
export function freeDestination(owner: string, now: string): string {
  return `NOT EXISTS (SELECT 1 FROM destination_leases l
        WHERE l.tenant_id = jobs.tenant_id AND l.origin = jobs.origin AND l.owner <> ${owner} AND l.expires_at >= ${now})`;
}

// The destinations of the claimed rows, held for $3 until $4 (taken when free, expired or already
// its own), in key order so that two claims never wait on each other's rows in opposite orders.
// A destination another instance took since the claim's snapshot does not come back (the WHERE of
// DO UPDATE is checked on the row as committed), and its jobs are left unclaimed.
const ACQUIRE = `
      INSERT INTO destination_leases AS l (tenant_id, origin, owner, expires_at)
      SELECT DISTINCT tenant_id, origin, $3, $4::int8 FROM c ORDER BY tenant_id, origin
      ON CONFLICT (tenant_id, origin) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE l.owner = excluded.owner OR l.owner IS NULL OR l.expires_at < $1::int8
      RETURNING tenant_id, origin`;

/**
 * A claim statement of dispatch.ts ($1 now, $2 limit, $3 owner, $4 lease expiry) made to keep to
 * destinations no other instance holds, and to hold the destinations of what it claims.
 */
export function withDestinationLeases(claim: string): string {
  const edits: [string, string][] = [
    ['SELECT id FROM jobs', 'SELECT id, tenant_id, origin FROM jobs'],
    ['AND due_at <= $1::int8', `AND due_at <= $1::int8\n        AND ${freeDestination('$3', '$1::int8')}`],
    ['FOR UPDATE SKIP LOCKED)', `FOR UPDATE SKIP LOCKED),\n    d AS (${ACQUIRE})`],
    ['FROM c WHERE jobs.id = c.id', 'FROM c WHERE jobs.id = c.id AND (c.tenant_id, c.origin) IN (SELECT tenant_id, origin FROM d)'],
  ];
  let out = claim;
  for (const [from, to] of edits) {
    if (!out.includes(from)) throw new Error(`claim statement changed: no "${from}" to add destination leases to`);
    out = out.replace(from, to);
  }
  return out;
}

// Kept lanes: renewed or taken (as a claim would) with their state. Given up: every other row the
// owner holds, with the state of those listed. The two sets are disjoint, so no row is changed twice.
const SYNC: Sql = {
  name: 'pulsegate_sync_lanes',
  text: `
    WITH s AS (
      SELECT * FROM unnest($4::text[], $5::text[], $6::bool[], $7::text[], $8::int4[], $9::int8[], $10::int8[], $11::float8[], $12::int8[])
        AS s(tenant_id, origin, keep, circuit, failures, open_until, cooldown_ms, tokens, tokens_at)
    ), kept AS (
      INSERT INTO destination_leases AS l (tenant_id, origin, owner, expires_at, circuit, failures, open_until, cooldown_ms, tokens, tokens_at)
      SELECT tenant_id, origin, $1, $3::int8, circuit, failures, open_until, cooldown_ms, tokens, tokens_at
      FROM s WHERE keep ORDER BY tenant_id, origin
      ON CONFLICT (tenant_id, origin) DO UPDATE SET
        owner = excluded.owner, expires_at = excluded.expires_at, circuit = excluded.circuit, failures = excluded.failures,
        open_until = excluded.open_until, cooldown_ms = excluded.cooldown_ms, tokens = excluded.tokens, tokens_at = excluded.tokens_at
      WHERE l.owner = excluded.owner OR l.owner IS NULL OR l.expires_at < $2::int8
      RETURNING tenant_id, origin
    ), given AS (
      UPDATE destination_leases l SET
        owner = NULL, expires_at = $2::int8,
        circuit = coalesce(g.circuit, l.circuit), failures = coalesce(g.failures, l.failures),
        open_until = coalesce(g.open_until, l.open_until), cooldown_ms = CASE WHEN g.listed THEN g.cooldown_ms ELSE l.cooldown_ms END,
        tokens = CASE WHEN g.listed THEN g.tokens ELSE l.tokens END, tokens_at = CASE WHEN g.listed THEN g.tokens_at ELSE l.tokens_at END
      FROM (
        SELECT m.tenant_id, m.origin, s.tenant_id IS NOT NULL AS listed, s.circuit, s.failures, s.open_until, s.cooldown_ms, s.tokens, s.tokens_at
        FROM destination_leases m LEFT JOIN s ON s.tenant_id = m.tenant_id AND s.origin = m.origin
        WHERE m.owner = $1 AND s.keep IS NOT TRUE) g
      WHERE l.tenant_id = g.tenant_id AND l.origin = g.origin AND l.owner = $1
      RETURNING 1
    )
    SELECT tenant_id, origin, (SELECT count(*) FROM given)::int AS given FROM kept
    UNION ALL SELECT NULL, NULL, (SELECT count(*) FROM given)::int`,
};

const LOAD: Sql = {
  name: 'pulsegate_load_lanes',
  text: `
    SELECT l.tenant_id, l.origin, l.circuit, l.failures, l.open_until, l.cooldown_ms, l.tokens, l.tokens_at
    FROM destination_leases l JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, origin)
      ON l.tenant_id = k.tenant_id AND l.origin = k.origin`,
};

const NOTIFY: Sql = { name: 'pulsegate_notify', text: `SELECT pg_notify($1, $2 || ':' || $3::int8)` };

export async function syncLanes(
  pool: pg.Pool,
  owner: string,
  now: number,
  leaseMs: number,
  lanes: LaneSync[],
  notify: NotifyTarget | null,
): Promise<{ tenant_id: string; origin: string }[]> {
  const { rows } = await query<{ tenant_id: string | null; origin: string | null; given: number }>(pool, SYNC, [
    owner,
    now,
    now + leaseMs,
    lanes.map((l) => l.tenant_id),
    lanes.map((l) => l.origin),
    lanes.map((l) => l.keep),
    lanes.map((l) => l.circuit),
    lanes.map((l) => l.failures),
    lanes.map((l) => l.open_until),
    lanes.map((l) => l.cooldown_ms),
    lanes.map((l) => l.tokens),
    lanes.map((l) => l.tokens_at),
  ]);
  // a destination given up may have jobs waiting in the store that other instances skipped while it
  // was held: wake them now rather than at their next poll
  if (notify && (rows.at(-1)?.given ?? 0) > 0) await query(pool, NOTIFY, [notify.channel, notify.sender, now]);
  return rows.filter((r) => r.tenant_id !== null).map((r) => ({ tenant_id: r.tenant_id as string, origin: r.origin as string }));
}

export async function loadLanes(pool: pg.Pool, keys: { tenant_id: string; origin: string }[]): Promise<LaneLease[]> {
  if (keys.length === 0) return [];
  const { rows } = await query<LaneLease>(pool, LOAD, [keys.map((k) => k.tenant_id), keys.map((k) => k.origin)]);
  return rows;
}
