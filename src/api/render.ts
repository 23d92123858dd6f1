// Jobs and attempts as the API shows them. A job's JSON is assembled around its stored payload
// text, so a payload is never parsed and re-encoded on the way out.

import type { Attempt } from '../domain/attempt.js';
import type { Job } from '../domain/job.js';
import { traceIdOf } from '../domain/trace-context.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The status a reader should see: a scheduled job whose time has come is queued. */
function visibleStatus(job: Job, now: number): Job['status'] {
  return job.status === 'scheduled' && job.run_at <= now ? 'queued' : job.status;
}

export function jobJson(job: Job, now: number): string {
  const rest = {
    tenant_id: job.tenant_id,
    type: job.type,
    status: visibleStatus(job, now),
  };
  const tail = {
    destination: job.destination,
    retry: job.retry,
    rate_limit: job.rate_limit,
    run_at: iso(job.run_at),
    attempts: job.attempts,
    next_attempt_at: iso(job.next_attempt_at),
    last_error: job.last_error,
    last_status_code: job.last_status_code,
    idempotency_key: job.idempotency_key,
    dedupe_key: job.dedupe_key,
    created_at: iso(job.created_at),
    updated_at: iso(job.updated_at),
    completed_at: iso(job.completed_at),
    trace_id: traceIdOf(job.traceparent) ?? null,
  };
  const head = JSON.stringify({ id: job.id, ...rest });
  const end = JSON.stringify(tail);
  return `${head.slice(0, -1)},"payload":${job.payload_json},${end.slice(1)}`;
}

export function jobPageJson(jobs: Job[], nextCursor: string | null, now: number): string {
  return `{"data":[${jobs.map((j) => jobJson(j, now)).join(',')}],"next_cursor":${JSON.stringify(nextCursor)}}`;
}

export function attemptView(a: Attempt) {
  return {
    attempt: a.attempt,
    started_at: iso(a.started_at) as string,
    finished_at: iso(a.finished_at) as string,
    duration_ms: a.duration_ms,
    outcome: a.outcome,
    error_kind: a.error_kind,
    status_code: a.status_code,
    error: a.error,
    response_body: a.response_body,
  };
}

/**
 * Marks JSON text built by the renderers above as the reply body: fastify sends a string as it is,
 * while the route's response schema still documents its shape.
 */
export function preserialized(json: string): never {
  return json as never;
}
