/*
 * The schedule state machine.
 *
 *   active ──(pause)──▶ paused ──(resume: next tick from now; ticks while paused are skipped)──▶ active
 *   active ──(the tick after end_at: no next tick)──▶ ended
 *   active | paused | ended ──(delete)──▶ gone (the jobs its ticks created stay)
 *
 * While active, next_tick_at is the first tick not yet turned into a job. The ticker claims a due
 * schedule under a short lease (one instance at a time), creates the job of each due tick, then
 * advances next_tick_at past now and drops the lease in one guarded update.
 */

export const SCHEDULE_STATUSES = ['active', 'paused', 'ended'] as const;
export type ScheduleStatus = (typeof SCHEDULE_STATUSES)[number];

/** What happens to ticks missed while no instance ran (older than SCHEDULE_MISSED_AFTER_MS). */
export const MISSED_TICK_POLICIES = ['catch_up', 'skip'] as const;
export type MissedTickPolicy = (typeof MISSED_TICK_POLICIES)[number];

/** A schedule as stored. Times are epoch milliseconds. */
export interface Schedule {
  id: string;
  tenant_id: string;
  /** 5 fields, or 6 with seconds first. */
  cron: string;
  /** IANA time zone the cron fields are read in. */
  time_zone: string;
  /** The job each tick creates: a validated POST /v1/jobs body (defaults filled in), as JSON text. */
  template_json: string;
  start_at: number | null;
  end_at: number | null;
  missed_ticks: MissedTickPolicy;
  /** Missed ticks created at most, newest first, when missed_ticks is catch_up. */
  catch_up_limit: number;
  status: ScheduleStatus;
  /** The first tick not yet created; null once ended. */
  next_tick_at: number | null;
  last_tick_at: number | null;
  last_job_id: string | null;
  created_at: number;
  updated_at: number;
}

export type NewSchedule = Omit<Schedule, 'last_tick_at' | 'last_job_id' | 'updated_at'>;
