// The shapes of /v1/schedules. A schedule's job template is exactly what POST /v1/jobs takes,
// validated by the same schema (createJobBodySchema).

import { z } from 'zod';
import { MISSED_TICK_POLICIES, SCHEDULE_STATUSES } from '../domain/schedule.js';
import { createJobBodySchema, tenantIdSchema } from './schemas.js';

const time = z.iso.datetime().describe('RFC 3339, UTC');

export const createScheduleBodySchema = z.strictObject({
  cron: z
    .string()
    .min(1)
    .max(255)
    .describe('5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; read in time_zone'),
  time_zone: z.string().min(1).max(64).default('UTC').describe('IANA time zone name, e.g. America/New_York (DST-aware)'),
  job: createJobBodySchema.describe('the job each tick creates: what POST /v1/jobs takes, without run_at (the tick sets it; delay_ms delays it)'),
  start_at: z.iso.datetime({ offset: true }).optional().describe('no tick before this (default: now)'),
  end_at: z.iso.datetime({ offset: true }).optional().describe('no tick after this; the schedule then ends'),
  missed_ticks: z
    .enum(MISSED_TICK_POLICIES)
    .default('catch_up')
    .describe('ticks missed while no instance ran: catch_up creates the newest catch_up_limit of them at start, skip creates none'),
  catch_up_limit: z.number().int().min(1).max(1000).optional().describe('missed ticks created at most (default SCHEDULE_CATCH_UP_LIMIT)'),
}).meta({ id: 'CreateScheduleRequest' });
export type CreateScheduleBody = z.infer<typeof createScheduleBodySchema>;

export const scheduleSchema = z.object({
  id: z.string(),
  tenant_id: z.string(),
  cron: z.string(),
  time_zone: z.string(),
  status: z.enum(SCHEDULE_STATUSES),
  job: z.record(z.string(), z.unknown()).describe('the job template, defaults filled in'),
  start_at: time.nullable(),
  end_at: time.nullable(),
  missed_ticks: z.enum(MISSED_TICK_POLICIES),
  catch_up_limit: z.number().int(),
  next_tick_at: time.nullable().describe('the next tick to create a job for; null once paused or ended'),
  last_tick_at: time.nullable(),
  last_job_id: z.string().nullable(),
  created_at: time,
  updated_at: time,
}).meta({ id: 'Schedule' });

export const schedulePageSchema = z.object({ data: z.array(scheduleSchema), next_cursor: z.string().nullable() }).meta({ id: 'SchedulePage' });

export const listSchedulesQuerySchema = z.strictObject({
  tenant_id: tenantIdSchema.optional(),
  status: z.enum(SCHEDULE_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().min(1).max(200).optional(),
});
