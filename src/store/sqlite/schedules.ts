// Schedules for the SQLite driver (see ../schedules.ts for what each method promises).

import type Database from 'better-sqlite3';
import type { NewSchedule, Schedule } from '../../domain/schedule.js';
import { rowToSchedule, type ScheduleAdvance, type ScheduleCommandResult, type ScheduleFilter, type ScheduleRow } from '../schedules.js';
import type { Page } from '../store.js';

type Named = Record<string, unknown>;
type Stmt<R = unknown> = Database.Statement<Named, R>;

const MAX_LIST_LIMIT = 1000;

export class SqliteSchedules {
  private readonly s: {
    insert: Stmt<ScheduleRow>;
    get: Stmt<ScheduleRow>;
    pause: Stmt<ScheduleRow>;
    resume: Stmt<ScheduleRow>;
    remove: Stmt<ScheduleRow>;
    claim: Stmt<ScheduleRow>;
    advance: Stmt;
    nextTick: Stmt<{ t: number | null }>;
  };
  private readonly lists = new Map<string, Stmt<ScheduleRow>>();
  private readonly commandTx: (stmt: Stmt<ScheduleRow>, params: Named) => ScheduleCommandResult;

  constructor(private readonly db: Database.Database) {
    this.s = {
      insert: db.prepare(`
        INSERT INTO schedules (id, tenant_id, cron, time_zone, template_json, start_at, end_at, missed_ticks, catch_up_limit,
          status, next_tick_at, created_at, updated_at)
        VALUES (@id, @tenant_id, @cron, @time_zone, @template_json, @start_at, @end_at, @missed_ticks, @catch_up_limit,
          @status, @next_tick_at, @created_at, @created_at)
        RETURNING *`),
      get: db.prepare(`SELECT * FROM schedules WHERE id = @id`),
      pause: db.prepare(`
        UPDATE schedules SET status = 'paused', lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'active' RETURNING *`),
      resume: db.prepare(`
        UPDATE schedules SET status = CASE WHEN @next_tick_at IS NULL THEN 'ended' ELSE 'active' END,
          next_tick_at = @next_tick_at, updated_at = @now
        WHERE id = @id AND status = 'paused' RETURNING *`),
      remove: db.prepare(`DELETE FROM schedules WHERE id = @id RETURNING *`),
      claim: db.prepare(`
        UPDATE schedules SET lease_owner = @owner, lease_expires_at = @lease_expires_at
        WHERE id IN (
          SELECT id FROM schedules INDEXED BY schedules_due
          WHERE status = 'active' AND next_tick_at <= @now AND (lease_owner IS NULL OR lease_expires_at <= @now OR @all = 1)
          ORDER BY next_tick_at, id LIMIT @limit)
        RETURNING *`),
      advance: db.prepare(`
        UPDATE schedules SET next_tick_at = @next_tick_at,
          status = CASE WHEN @next_tick_at IS NULL THEN 'ended' ELSE status END,
          last_tick_at = coalesce(@last_tick_at, last_tick_at), last_job_id = coalesce(@last_job_id, last_job_id),
          lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND lease_owner = @owner AND status = 'active'`),
      nextTick: db.prepare(`SELECT min(next_tick_at) AS t FROM schedules INDEXED BY schedules_due WHERE status = 'active'`),
    };
    const tx = db.transaction((stmt: Stmt<ScheduleRow>, params: Named): ScheduleCommandResult => {
      const changed = stmt.get(params);
      if (changed) return { kind: 'ok', schedule: rowToSchedule(changed) };
      const current = this.s.get.get({ id: params.id });
      return current ? { kind: 'conflict', schedule: rowToSchedule(current) } : { kind: 'not_found' };
    });
    this.commandTx = (stmt, params) => tx.immediate(stmt, params);
  }

  create(n: NewSchedule): Schedule {
    return rowToSchedule(this.s.insert.get({ ...n }) as ScheduleRow);
  }

  get(id: string): Schedule | null {
    const row = this.s.get.get({ id });
    return row ? rowToSchedule(row) : null;
  }

  list(filter: ScheduleFilter, limit: number, cursor: string | null): Page<Schedule> {
    const n = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.floor(limit)));
    const where: string[] = [];
    const params: Named = { limit: n + 1 };
    if (filter.tenant_id !== undefined) {
      where.push('tenant_id = @tenant_id');
      params.tenant_id = filter.tenant_id;
    }
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = filter.status;
    }
    // the cursor is the last id of the previous page; ids sort by creation time
    if (cursor !== null) {
      where.push('id < @cursor');
      params.cursor = cursor;
    }
    const sql = `SELECT * FROM schedules ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    let stmt = this.lists.get(sql);
    if (!stmt) this.lists.set(sql, (stmt = this.db.prepare<Named, ScheduleRow>(sql)));
    const rows = stmt.all(params);
    const more = rows.length > n;
    const data = rows.slice(0, n).map(rowToSchedule);
    return { data, next_cursor: more ? (data[data.length - 1]?.id ?? null) : null };
  }

  pause(id: string, now: number): ScheduleCommandResult {
    return this.commandTx(this.s.pause, { id, now });
  }

  resume(id: string, nextTickAt: number | null, now: number): ScheduleCommandResult {
    return this.commandTx(this.s.resume, { id, next_tick_at: nextTickAt, now });
  }

  remove(id: string): Schedule | null {
    const row = this.s.remove.get({ id });
    return row ? rowToSchedule(row) : null;
  }

  claim(owner: string, now: number, leaseMs: number, limit: number, all: boolean): Schedule[] {
    return this.s.claim.all({ owner, now, lease_expires_at: now + leaseMs, limit, all: all ? 1 : 0 }).map(rowToSchedule);
  }

  advance(a: ScheduleAdvance, now: number): boolean {
    return this.s.advance.run({ ...a, now }).changes === 1;
  }

  nextTickAt(): number | null {
    return this.s.nextTick.get({})?.t ?? null;
  }
}
