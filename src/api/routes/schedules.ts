// /v1/schedules: recurring jobs. Each tick of a schedule creates one job through the normal intake
// path (src/schedules/ticker.ts); these routes only create, read, pause, resume and delete them.

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { newId } from '../../domain/ids.js';
import { z } from 'zod';
import type { Schedule } from '../../domain/schedule.js';
import { compileCron, firstTickFrom, isCronError } from '../../schedules/cron.js';
import type { ApiContext } from '../context.js';
import { prepareJob } from '../create-job.js';
import { ApiError } from '../errors.js';
import { createScheduleBodySchema, listSchedulesQuerySchema, schedulePageSchema, scheduleSchema } from '../schedule-schemas.js';
import { errorSchema, jobIdSchema } from '../schemas.js';

const idParams = z.object({ id: z.string().max(200) });
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function scheduleView(s: Schedule) {
  return {
    id: s.id,
    tenant_id: s.tenant_id,
    cron: s.cron,
    time_zone: s.time_zone,
    status: s.status,
    job: JSON.parse(s.template_json) as Record<string, unknown>,
    start_at: iso(s.start_at),
    end_at: iso(s.end_at),
    missed_ticks: s.missed_ticks,
    catch_up_limit: s.catch_up_limit,
    next_tick_at: s.status === 'active' ? iso(s.next_tick_at) : null,
    last_tick_at: iso(s.last_tick_at),
    last_job_id: s.last_job_id,
    created_at: iso(s.created_at) as string,
    updated_at: iso(s.updated_at) as string,
  };
}

function scheduleId(id: string): string {
  if (!jobIdSchema.safeParse(id).success) throw new ApiError(404, 'not_found', 'schedule not found');
  return id;
}

export function scheduleRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store, clock, events } = ctx;

  r.post('/v1/schedules', {
    schema: {
      operationId: 'createSchedule',
      summary: 'Create a recurring schedule',
      description:
        'Each tick of the cron expression (read in time_zone) creates one job from the template, with the Idempotency-Key schedule:<id>:<tick>, so a tick becomes one job however many instances run or restart.',
      tags: ['schedules'],
      body: createScheduleBodySchema,
      response: { 401: errorSchema, 403: errorSchema, 201: scheduleSchema, 400: errorSchema, 413: errorSchema, 422: errorSchema, 503: errorSchema },
    },
  }, async (req, reply) => {
    const b = req.body;
    if (b.job.run_at !== undefined) {
      const message = 'a template has no run_at: each tick sets it (use delay_ms to run a while after the tick)';
      throw new ApiError(422, 'validation_failed', `invalid body: body.job.run_at ${message}`, { fields: [{ field: 'body.job.run_at', message }] });
    }
    const spec = compileCron(b.cron, b.time_zone);
    if (isCronError(spec)) throw new ApiError(400, spec.code, spec.message);
    const startAt = b.start_at === undefined ? null : Date.parse(b.start_at);
    const endAt = b.end_at === undefined ? null : Date.parse(b.end_at);
    if (startAt !== null && endAt !== null && endAt <= startAt) {
      throw new ApiError(400, 'invalid_schedule_window', 'end_at must be after start_at');
    }
    const now = clock.now();
    const first = firstTickFrom(spec, Math.max(now, startAt ?? now));
    if (first === null || (endAt !== null && first > endAt)) {
      throw new ApiError(400, 'invalid_schedule_window', `the cron expression has no tick between ${new Date(Math.max(now, startAt ?? now)).toISOString()} and end_at`);
    }
    // the rules a job is held to (payload size, destination policy) refuse a bad template now, not at its first tick
    prepareJob(ctx, b.job, JSON.stringify(b.job.payload), null, now);
    const s = await store.createSchedule({
      id: newId(),
      tenant_id: b.job.tenant_id,
      cron: b.cron.trim().split(/\s+/).join(' '),
      time_zone: b.time_zone,
      template_json: JSON.stringify(b.job),
      start_at: startAt,
      end_at: endAt,
      missed_ticks: b.missed_ticks,
      catch_up_limit: b.catch_up_limit ?? ctx.config.SCHEDULE_CATCH_UP_LIMIT,
      status: 'active',
      next_tick_at: first,
      created_at: now,
    });
    ctx.schedules?.notify(first);
    events.emit({ type: 'schedule.changed', schedule_id: s.id, tenant_id: s.tenant_id, action: 'created' });
    reply.code(201).header('location', `/v1/schedules/${s.id}`);
    return scheduleView(s);
  });

  r.get('/v1/schedules', {
    schema: {
      operationId: 'listSchedules',
      summary: 'List schedules, newest first',
      tags: ['schedules'],
      querystring: listSchedulesQuerySchema,
      response: { 401: errorSchema, 403: errorSchema, 200: schedulePageSchema, 400: errorSchema },
    },
  }, async (req) => {
    const { limit, cursor, ...filter } = req.query;
    const page = await store.listSchedules(filter, limit, cursor ?? null);
    return { data: page.data.map(scheduleView), next_cursor: page.next_cursor };
  });

  r.get('/v1/schedules/:id', {
    schema: { operationId: 'getSchedule', summary: 'Get a schedule', tags: ['schedules'], params: idParams, response: { 401: errorSchema, 403: errorSchema, 200: scheduleSchema, 404: errorSchema } },
  }, async (req) => {
    const s = await store.getSchedule(scheduleId(req.params.id));
    if (!s) throw new ApiError(404, 'not_found', 'schedule not found');
    return scheduleView(s);
  });

  r.post('/v1/schedules/:id/pause', {
    schema: {
      operationId: 'pauseSchedule',
      summary: 'Pause a schedule',
      description: 'No tick creates a job until it is resumed. A job already created stays.',
      tags: ['schedules'],
      params: idParams,
      response: { 401: errorSchema, 403: errorSchema, 200: scheduleSchema, 404: errorSchema, 409: errorSchema },
    },
  }, async (req) => {
    const res = await store.pauseSchedule(scheduleId(req.params.id), clock.now());
    if (res.kind === 'not_found') throw new ApiError(404, 'not_found', 'schedule not found');
    if (res.kind === 'conflict') throw new ApiError(409, 'conflict', `only an active schedule can be paused; this one is ${res.schedule.status}`, { status: res.schedule.status });
    events.emit({ type: 'schedule.changed', schedule_id: res.schedule.id, tenant_id: res.schedule.tenant_id, action: 'paused' });
    return scheduleView(res.schedule);
  });

  r.post('/v1/schedules/:id/resume', {
    schema: {
      operationId: 'resumeSchedule',
      summary: 'Resume a paused schedule',
      description: 'It ticks again from now on: ticks that fell while it was paused are not created.',
      tags: ['schedules'],
      params: idParams,
      response: { 401: errorSchema, 403: errorSchema, 200: scheduleSchema, 404: errorSchema, 409: errorSchema },
    },
  }, async (req) => {
    const id = scheduleId(req.params.id);
    const current = await store.getSchedule(id);
    if (!current) throw new ApiError(404, 'not_found', 'schedule not found');
    const now = clock.now();
    const spec = compileCron(current.cron, current.time_zone);
    let next = isCronError(spec) ? null : firstTickFrom(spec, Math.max(now, current.start_at ?? now));
    if (next !== null && current.end_at !== null && next > current.end_at) next = null;
    const res = await store.resumeSchedule(id, next, now);
    if (res.kind === 'not_found') throw new ApiError(404, 'not_found', 'schedule not found');
    if (res.kind === 'conflict') throw new ApiError(409, 'conflict', `only a paused schedule can be resumed; this one is ${res.schedule.status}`, { status: res.schedule.status });
    ctx.schedules?.notify(next);
    events.emit({ type: 'schedule.changed', schedule_id: res.schedule.id, tenant_id: res.schedule.tenant_id, action: res.schedule.status === 'ended' ? 'ended' : 'resumed' });
    return scheduleView(res.schedule);
  });

  r.delete('/v1/schedules/:id', {
    schema: {
      operationId: 'deleteSchedule',
      summary: 'Delete a schedule',
      description: 'No further tick creates a job; the jobs its ticks created stay.',
      tags: ['schedules'],
      params: idParams,
      response: { 401: errorSchema, 403: errorSchema, 204: z.null().describe('deleted'), 404: errorSchema },
    },
  }, async (req, reply) => {
    const gone = await store.deleteSchedule(scheduleId(req.params.id));
    if (!gone) throw new ApiError(404, 'not_found', 'schedule not found');
    events.emit({ type: 'schedule.changed', schedule_id: gone.id, tenant_id: gone.tenant_id, action: 'deleted' });
    return reply.code(204).send(null);
  });
}
