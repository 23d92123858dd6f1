// What POST /v1/jobs and POST /v1/jobs/batch share: a validated request made into the job the store
// writes (or the ApiError that refuses it), and a store outcome made into the answer a client sees.

import type { FastifyReply } from 'fastify';
import type { CreateOutcome, Job, NewJob } from '../domain/job.js';
import type { IncomingTrace } from '../domain/trace-context.js';
import type { CreateSpan } from '../observability/tracing.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import { toNewJob } from './new-job.js';
import type { CreateJobBody } from './schemas.js';

/** Refused with 503 and Retry-After while the service is not taking jobs. */
export function requireReady(ctx: ApiContext, reply: FastifyReply): void {
  if (ctx.lifecycle.phase !== 'ready') {
    reply.header('retry-after', ctx.lifecycle.phase === 'draining' ? '5' : '1');
    throw new ApiError(503, 'overloaded', ctx.lifecycle.phase === 'draining' ? 'shutting down: send the job to another instance or retry' : 'starting: retry shortly');
  }
}

/** The job to write for one validated request; throws the ApiError a rule refuses it with. */
export function prepareJob(ctx: Pick<ApiContext, 'config' | 'destinations'>, body: CreateJobBody, payloadJson: string, idempotencyKey: string | null, now: number): NewJob {
  const size = Buffer.byteLength(payloadJson);
  if (size > ctx.config.MAX_PAYLOAD_BYTES) {
    throw new ApiError(413, 'payload_too_large', `payload is ${size} bytes encoded; the limit is ${ctx.config.MAX_PAYLOAD_BYTES}`);
  }
  const check = ctx.destinations.checkUrl(body.destination.url);
  if (!check.ok) {
    throw new ApiError(422, 'destination_not_allowed', `destination.url is not allowed: ${check.reason}`, {
      fields: [{ field: 'body.destination.url', message: check.reason }],
    });
  }
  return toNewJob(body, payloadJson, idempotencyKey, now, {
    dedupeWindowMs: ctx.config.DEDUPE_WINDOW_SECONDS * 1000,
    idempotencyTtlMs: ctx.config.IDEMPOTENCY_TTL_SECONDS * 1000,
  });
}

export type CreateAnswer =
  | { status: 201 | 200; job: Job; header: 'idempotent-replayed' | 'deduplicated' | null }
  | { status: 422; error: ApiError };

export function answerFor(out: CreateOutcome): CreateAnswer {
  switch (out.kind) {
    case 'created':
      return { status: 201, job: out.job, header: null };
    case 'idempotent_replay':
      return { status: 200, job: out.job, header: 'idempotent-replayed' };
    case 'deduplicated':
      return { status: 200, job: out.job, header: 'deduplicated' };
    case 'idempotency_conflict':
      return {
        status: 422,
        error: new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request body', { job_id: out.job_id }),
      };
  }
}

/**
 * Opens the create span of a job about to be written (its start: when the request began) and puts
 * its trace context on the job. Null when the job has no trace.
 */
export function traceCreate(ctx: ApiContext, incoming: IncomingTrace | null, job: NewJob, startTime: number): CreateSpan | null {
  const span = ctx.tracing.startCreate(incoming, startTime);
  if (span !== null) {
    job.traceparent = span.traceparent;
    job.tracestate = span.tracestate;
  }
  return span;
}
