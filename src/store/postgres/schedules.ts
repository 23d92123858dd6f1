// Schedules for the PostgreSQL driver (see ../schedules.ts for what each method promises). Several
// instances tick the same schedules: a claim takes due rows with FOR UPDATE SKIP LOCKED under a
// lease, so one instance at a time creates a schedule's tick; the advance is guarded on that lease.

import type pg from 'pg';
import type { NewSchedule, Schedule } from '../../domain/schedule.js';
import { rowToSchedule, type ScheduleAdvance, type ScheduleCommandResult, type ScheduleFilter, type ScheduleRow } from '../schedules.js';
import type { Page } from '../store.js';
import { query, type Sql } from './pool.js';

const MAX_LIST_LIMIT = 1000;

const INSERT: Sql = {
  text: `
    INSERT INTO schedules (id, tenant_id, cron, time_zone, template_json, start_at, end_at, missed_ticks, catch_up_limit,
      status, next_tick_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
    RETURNING *`,
};
const GET: Sql = { name: 'pulsegate_get_schedule', text: `SELECT * FROM schedules WHERE id = $1` };

/** Wraps a guarded `UPDATE schedules … WHERE id = $1 AND <guard>` so the schedule comes back either way. */
function command(update: string): Sql {
  return {
    text: `
      WITH u AS (${update} RETURNING *)
      SELECT true AS changed, u.* FROM u
      UNION ALL
      SELECT false AS changed, s.* FROM schedules s WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM u)`,
  };
}

const PAUSE = command(`
  UPDATE schedules SET status = 'paused', lease_owner = NULL, lease_expires_at = NULL, updated_at = $2::int8
  WHERE id = $1 AND status = 'active'`);
const RESUME = command(`
  UPDATE schedules SET status = CASE WHEN $3::int8 IS NULL THEN 'ended' ELSE 'active' END, next_tick_at = $3::int8,
    updated_at = $2::int8
  WHERE id = $1 AND status = 'paused'`);
const DELETE: Sql = { text: `DELETE FROM schedules WHERE id = $1 RETURNING *` };
const CLAIM: Sql = {
  name: 'pulsegate_claim_schedules',
  text: `
    UPDATE schedules SET lease_owner = $1, lease_expires_at = $3::int8
    WHERE id IN (
      SELECT id FROM schedules
      WHERE status = 'active' AND next_tick_at <= $2::int8 AND (lease_owner IS NULL OR lease_expires_at <= $2::int8 OR $5::boolean)
      ORDER BY next_tick_at, id LIMIT $4
      FOR UPDATE SKIP LOCKED)
    RETURNING *`,
};
const ADVANCE: Sql = {
  name: 'pulsegate_advance_schedule',
  text: `
    UPDATE schedules SET next_tick_at = $3::int8,
      status = CASE WHEN $3::int8 IS NULL THEN 'ended' ELSE status END,
      last_tick_at = coalesce($4::int8, last_tick_at), last_job_id = coalesce($5::text, last_job_id),
      lease_owner = NULL, lease_expires_at = NULL, updated_at = $6::int8
    WHERE id = $1 AND lease_owner = $2 AND status = 'active'`,
};
const NEXT_TICK: Sql = {
  name: 'pulsegate_next_schedule_tick',
  text: `SELECT min(next_tick_at) AS t FROM schedules WHERE status = 'active'`,
};

export async function createSchedule(pool: pg.Pool, n: NewSchedule): Promise<Schedule> {
  const { rows } = await query<ScheduleRow>(pool, INSERT, [
    n.id, n.tenant_id, n.cron, n.time_zone, n.template_json, n.start_at, n.end_at, n.missed_ticks, n.catch_up_limit,
    n.status, n.next_tick_at, n.created_at,
  ]);
  return rowToSchedule(rows[0] as ScheduleRow);
}

export async function getSchedule(pool: pg.Pool, id: string): Promise<Schedule | null> {
  const row = (await query<ScheduleRow>(pool, GET, [id])).rows[0];
  return row ? rowToSchedule(row) : null;
}

export async function listSchedules(pool: pg.Pool, filter: ScheduleFilter, limit: number, cursor: string | null): Promise<Page<Schedule>> {
  const n = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.floor(limit)));
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (cond: string, v: unknown) => {
    values.push(v);
    where.push(cond.replace('?', `$${values.length}`));
  };
  if (filter.tenant_id !== undefined) add('tenant_id = ?', filter.tenant_id);
  if (filter.status !== undefined) add('status = ?', filter.status);
  // the cursor is the last id of the previous page; ids sort by creation time (byte-wise)
  if (cursor !== null) add('id < ?', cursor);
  values.push(n + 1);
  const text = `SELECT * FROM schedules ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${values.length}`;
  const { rows } = await query<ScheduleRow>(pool, { text }, values);
  const more = rows.length > n;
  const data = rows.slice(0, n).map(rowToSchedule);
  return { data, next_cursor: more ? (data[data.length - 1]?.id ?? null) : null };
}

async function run(pool: pg.Pool, sql: Sql, values: unknown[]): Promise<ScheduleCommandResult> {
  const row = (await query<ScheduleRow & { changed: boolean }>(pool, sql, values)).rows[0];
  if (!row) return { kind: 'not_found' };
  return row.changed ? { kind: 'ok', schedule: rowToSchedule(row) } : { kind: 'conflict', schedule: rowToSchedule(row) };
}

export const pauseSchedule = (pool: pg.Pool, id: string, now: number) => run(pool, PAUSE, [id, now]);
export const resumeSchedule = (pool: pg.Pool, id: string, nextTickAt: number | null, now: number) => run(pool, RESUME, [id, now, nextTickAt]);

export async function deleteSchedule(pool: pg.Pool, id: string): Promise<Schedule | null> {
  const row = (await query<ScheduleRow>(pool, DELETE, [id])).rows[0];
  return row ? rowToSchedule(row) : null;
}

export async function claimDueSchedules(pool: pg.Pool, owner: string, now: number, leaseMs: number, limit: number, all = false): Promise<Schedule[]> {
  return (await query<ScheduleRow>(pool, CLAIM, [owner, now, now + leaseMs, limit, all])).rows.map(rowToSchedule);
}

export async function advanceSchedule(pool: pg.Pool, a: ScheduleAdvance, now: number): Promise<boolean> {
  return (await query(pool, ADVANCE, [a.id, a.owner, a.next_tick_at, a.last_tick_at, a.last_job_id, now])).rowCount === 1;
}

export async function nextScheduleTickAt(pool: pg.Pool): Promise<number | null> {
  return (await query<{ t: number | null }>(pool, NEXT_TICK)).rows[0]?.t ?? null;
}
