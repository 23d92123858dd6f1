// The schedules part of the Store contract (see store.ts for the rules every method keeps: one
// statement or transaction each, `now` passed in, state changes guarded on the state expected).
// Both drivers implement it; test/store/schedule-contract.ts is its suite.

import type { NewSchedule, Schedule, ScheduleStatus } from '../domain/schedule.js';
import type { Page } from './store.js';

export interface ScheduleFilter {
  tenant_id?: string;
  status?: ScheduleStatus;
}

export type ScheduleCommandResult =
  | { kind: 'ok'; schedule: Schedule }
  | { kind: 'not_found' }
  | { kind: 'conflict'; schedule: Schedule };

/** What the ticker writes once a claimed schedule's due ticks have their jobs. */
export interface ScheduleAdvance {
  id: string;
  /** The lease holder (from claimDueSchedules): the write applies only while it still holds it. */
  owner: string;
  /** The first tick after now; null ends the schedule. */
  next_tick_at: number | null;
  /** The newest tick created, and its job; null when this round created none (all skipped). */
  last_tick_at: number | null;
  last_job_id: string | null;
}

export interface ScheduleStore {
  /** Stores a new schedule (status and next_tick_at as given; updated_at = created_at). */
  createSchedule(s: NewSchedule): Promise<Schedule>;
  getSchedule(id: string): Promise<Schedule | null>;
  /** Newest first (ids are time-sortable), like listJobs. limit 1..1000. */
  listSchedules(filter: ScheduleFilter, limit: number, cursor: string | null): Promise<Page<Schedule>>;
  /** active → paused (its lease dropped: a tick in progress does not advance it). Other statuses → conflict. */
  pauseSchedule(id: string, now: number): Promise<ScheduleCommandResult>;
  /** paused → active with next_tick_at (null: ended, nothing left to tick). Other statuses → conflict. */
  resumeSchedule(id: string, nextTickAt: number | null, now: number): Promise<ScheduleCommandResult>;
  /** Deletes it; returns it as it was, or null when there is no such schedule. Its jobs stay. */
  deleteSchedule(id: string): Promise<Schedule | null>;
  /**
   * Takes up to `limit` active schedules whose next_tick_at <= now and that no one holds (or whose
   * lease expired), earliest first, in one statement: sets lease_owner = owner and
   * lease_expires_at = now + leaseMs. Two instances never hold one schedule at once. With `all`,
   * leases still running are taken over too (an embedded single-process database at start: whoever
   * held them is gone).
   */
  claimDueSchedules(owner: string, now: number, leaseMs: number, limit: number, opts?: { all?: boolean }): Promise<Schedule[]>;
  /**
   * Applies an advance and drops the lease, only while owner holds the schedule and it is still
   * active; next_tick_at null makes it ended. Returns whether it applied.
   */
  advanceSchedule(a: ScheduleAdvance, now: number): Promise<boolean>;
  /** Earliest next_tick_at among active schedules (held or not), or null. */
  nextScheduleTickAt(): Promise<number | null>;
}

/** A schedules row as both drivers read it (SELECT *). */
export type ScheduleRow = Schedule & { lease_owner: string | null; lease_expires_at: number | null };

/** A row as the contract returns it (the lease is the driver's business). */
export function rowToSchedule(r: ScheduleRow): Schedule {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    cron: r.cron,
    time_zone: r.time_zone,
    template_json: r.template_json,
    start_at: r.start_at,
    end_at: r.end_at,
    missed_ticks: r.missed_ticks,
    catch_up_limit: r.catch_up_limit,
    status: r.status,
    next_tick_at: r.next_tick_at,
    last_tick_at: r.last_tick_at,
    last_job_id: r.last_job_id,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}
