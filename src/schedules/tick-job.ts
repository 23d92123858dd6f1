// The job of one tick, made through the normal intake path: the same rules as POST /v1/jobs
// (payload size, destination policy), the same group commit, idempotency and dedupe, claim at insert.

import { prepareJob } from '../api/create-job.js';
import type { ApiContext } from '../api/context.js';
import { ApiError } from '../api/errors.js';
import type { CreateJobBody } from '../api/schemas.js';
import type { Schedule } from '../domain/schedule.js';
import type { Intake } from '../engine/intake.js';
import type { TickJobOutcome } from './ticker.js';

/** The tick's Idempotency-Key: the same on every instance and every retry of the tick. */
export function tickIdempotencyKey(scheduleId: string, tickAt: number): string {
  return `schedule:${scheduleId}:${new Date(tickAt).toISOString()}`;
}

/**
 * The job request of a tick: the template, due at the tick (or delay_ms after it is created), with
 * the tick's key as its dedupe_key unless the template names one, so content dedupe (on by default)
 * does not fold one tick's job into the previous one's.
 */
export function tickJobBody(template: CreateJobBody, key: string, tickAt: number): CreateJobBody {
  const body: CreateJobBody = { ...template, dedupe_key: template.dedupe_key ?? key };
  if (body.delay_ms === undefined) body.run_at = new Date(tickAt).toISOString();
  return body;
}

export function tickJobCreator(ctx: Pick<ApiContext, 'config' | 'destinations'> & { intake: Intake }) {
  return async (s: Schedule, tickAt: number, now: number): Promise<TickJobOutcome> => {
    const key = tickIdempotencyKey(s.id, tickAt);
    const body = tickJobBody(JSON.parse(s.template_json) as CreateJobBody, key, tickAt);
    let job;
    try {
      job = prepareJob(ctx, body, JSON.stringify(body.payload), key, now);
    } catch (err) {
      if (err instanceof ApiError) return { kind: 'refused', reason: err.message };
      throw err;
    }
    const out = await ctx.intake.submit(job);
    switch (out.kind) {
      case 'created':
        return { kind: 'created', job_id: out.job.id };
      case 'idempotent_replay':
        return { kind: 'replayed', job_id: out.job.id };
      case 'deduplicated':
        return { kind: 'deduplicated', job_id: out.job.id };
      case 'idempotency_conflict':
        return { kind: 'refused', reason: `another request already used the idempotency key ${key}` };
    }
  };
}
