// Ordering keys for the PostgreSQL driver (the rules are in domain/ordering.ts). Instances share
// the lines, so every transaction that changes which jobs a line holds — a create, the end of a job
// (result, cancel), an operator retry — first takes its keys' transaction-level advisory locks, in
// one order (sorted hashes: never a deadlock between two of them), before it touches a row. The
// statement after the lock then sees (READ COMMITTED: a fresh snapshot per statement) every change
// committed to the line before it, so a create never misses the end of the job it would wait for,
// and an end never misses a job created behind it. Claims take no key lock: a waiting job is due
// only at WAITING_FOR_KEY, so a claim never reaches it.

import { distinctKeys, WAITING_FOR_KEY, type OrderingKey } from '../../domain/ordering.js';
import type { LinePlace } from '../sqlite/rows.js';
import { query, type Queryable, type Sql } from './pool.js';

/** The class of the two-int advisory locks ('orde'); the single-bigint space (migrations) never overlaps it. */
const LOCK_CLASS = 0x6f726465;

const UNFINISHED = `status IN ('scheduled','queued','running','retrying')`;

// The subquery's ORDER BY keeps it from being flattened, so the locks are taken in that order.
const LOCK: Sql = {
  name: 'pulsegate_ordering_lock',
  text: `SELECT count(pg_advisory_xact_lock(${LOCK_CLASS}, h)) FROM (SELECT h FROM unnest($1::int4[]) AS u(h) ORDER BY h) s`,
};

// Each key's last unfinished job (jobs_ordering, one seek per key); keys with none are absent.
const TAILS: Sql = {
  name: 'pulsegate_ordering_tails',
  text: `
    SELECT k.tenant_id, k.key, t.seq FROM unnest($1::text[], $2::text[]) AS k(tenant_id, key),
    LATERAL (SELECT ordering_seq AS seq FROM jobs
             WHERE tenant_id = k.tenant_id AND ordering_key = k.key AND ${UNFINISHED} AND id <> $3
             ORDER BY ordering_seq DESC LIMIT 1) t`,
};

// Each line's first unfinished job, if it was waiting, takes its own due time back.
const SETTLE: Sql = {
  name: 'pulsegate_ordering_settle',
  text: `
    WITH h AS (
      SELECT f.id FROM unnest($1::text[], $2::text[]) AS k(tenant_id, key),
      LATERAL (SELECT id, due_at FROM jobs
               WHERE tenant_id = k.tenant_id AND ordering_key = k.key AND ${UNFINISHED}
               ORDER BY ordering_seq LIMIT 1) f
      WHERE f.due_at = ${WAITING_FOR_KEY})
    UPDATE jobs SET due_at = coalesce(next_attempt_at, run_at), updated_at = $3::int8
    FROM h WHERE jobs.id = h.id`,
};

const REQUEUE: Sql = {
  name: 'pulsegate_ordering_requeue',
  text: `UPDATE jobs SET ordering_seq = $2::int8, due_at = CASE WHEN $3::bool THEN ${WAITING_FOR_KEY} ELSE due_at END WHERE id = $1`,
};

const KEYS_OF: Sql = {
  name: 'pulsegate_ordering_keys_of',
  text: `SELECT tenant_id, ordering_key AS key FROM jobs WHERE id = ANY($1::text[]) AND ordering_key IS NOT NULL`,
};

/** FNV-1a of the key, as a signed 32-bit number: the advisory lock's second half. Collisions only serialize more. */
function lockHash(k: OrderingKey): number {
  let h = 0x811c9dc5;
  const s = `${k.tenant_id}\u0000${k.key}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

const mapKey = (tenant: string, key: string): string => `${tenant}\u0000${key}`;

/** Takes the keys' locks until the transaction ends. Call first in the transaction. */
export async function lockKeys(db: Queryable, keys: Iterable<OrderingKey>): Promise<void> {
  const hashes = [...new Set(distinctKeys(keys).map(lockHash))];
  if (hashes.length > 0) await query(db, LOCK, [hashes]);
}

/** The keys the jobs carry (a key never changes, so it is safe to read before the lock). */
export async function keysOf(db: Queryable, ids: string[]): Promise<OrderingKey[]> {
  return (await query<OrderingKey>(db, KEYS_OF, [ids])).rows;
}

/** Each line's last unfinished ordering_seq (read under the keys' locks); keys of idle lines are absent. */
export type LineTails = ReadonlyMap<string, number>;

export async function lineTails(db: Queryable, keys: OrderingKey[], except = ''): Promise<LineTails> {
  const tails = new Map<string, number>();
  const distinct = distinctKeys(keys);
  if (distinct.length > 0) {
    const { rows } = await query<{ tenant_id: string; key: string; seq: number }>(db, TAILS, [
      distinct.map((k) => k.tenant_id),
      distinct.map((k) => k.key),
      except,
    ]);
    for (const r of rows) tails.set(mapKey(r.tenant_id, r.key), r.seq);
  }
  return tails;
}

/** Hands out places behind the tails, in the order asked for (each job joins behind the one before). */
export function placer(from: LineTails): (key: OrderingKey) => LinePlace {
  const tails = new Map(from);
  return (key) => {
    const k = mapKey(key.tenant_id, key.key);
    const last = tails.get(k);
    tails.set(k, (last ?? 0) + 1);
    return { seq: (last ?? 0) + 1, waiting: last !== undefined };
  };
}

/** A job back from failed or cancelled goes to the back of its key's line (under the key's lock). */
export async function requeue(db: Queryable, id: string, key: OrderingKey): Promise<void> {
  const place = placer(await lineTails(db, [key], id))(key);
  await query(db, REQUEUE, [id, place.seq, place.waiting]);
}

/** After jobs of these keys ended (under their locks): each line's first job, if waiting, becomes due. */
export async function settle(db: Queryable, keys: Iterable<OrderingKey>, now: number): Promise<void> {
  const distinct = distinctKeys(keys);
  if (distinct.length > 0) await query(db, SETTLE, [distinct.map((k) => k.tenant_id), distinct.map((k) => k.key), now]);
}
