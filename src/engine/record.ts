// Writes an attempt's result and the job's next state (through the write batcher, many per
// transaction) and tells the observers. The retry policy (domain/retry-policy.ts) decides the next
// state; this only carries it out.

import type { DeliveryResult } from '../domain/attempt.js';
import type { JobStatus } from '../domain/job.js';
import { nextStep } from '../domain/retry-policy.js';
import { traceIdOf } from '../domain/trace-context.js';
import type { Clock } from '../clock.js';
import type { DeliveryRequest } from '../delivery/dispatcher.js';
import type { ClaimedJob } from '../store/store.js';
import type { EventBus } from '../observability/events.js';
import type { AttemptSpan } from '../observability/tracing.js';
import type { Held } from './held.js';
import type { WriteBatcher } from './write-batcher.js';

export type Deliver = (req: DeliveryRequest) => Promise<DeliveryResult>;

/** Sends one attempt; never rejects (the dispatcher returns outcomes as values; the catch is a bug guard). */
export async function deliverAttempt(
  deliver: Deliver,
  job: ClaimedJob,
  startedAt: number,
  span: AttemptSpan | null = null,
): Promise<{ result: DeliveryResult; durationMs: number }> {
  const t0 = performance.now();
  let result: DeliveryResult;
  try {
    const req: DeliveryRequest = {
      job_id: job.id,
      tenant_id: job.tenant_id,
      destination: job.destination,
      payload_json: job.payload_json,
      timestamp_s: Math.floor(startedAt / 1000),
    };
    if (span !== null) {
      req.traceparent = span.traceparent;
      req.tracestate = span.tracestate;
    }
    result = await deliver(req);
  } catch (err) {
    result = {
      outcome: 'retryable_error',
      error_kind: 'connect',
      status_code: null,
      error: `internal: ${(err as Error)?.message ?? String(err)}`,
      response_body: null,
      retry_after_ms: null,
    };
  }
  return { result, durationMs: performance.now() - t0 };
}

export interface Recording {
  clock: Clock;
  events: EventBus;
  writer: WriteBatcher;
  owner: string;
  random: () => number;
  retryAfterMaxMs: number;
}

export interface FinishedAttempt {
  h: Held;
  attempt: number;
  startedAt: number;
  durationMs: number;
  result: DeliveryResult;
}

/** Records one attempt; `onRetryDue` hears when a retry is due once its state is written. */
export function recordAttempt(r: Recording, a: FinishedAttempt, onRetryDue: (at: number) => void): void {
  const { h, attempt, startedAt, durationMs, result } = a;
  const job = h.job;
  const now = r.clock.now();
  const next = nextStep({ result, attempt, retry: job.retry, now, random: r.random, retryAfterMaxMs: r.retryAfterMaxMs });
  const error = result.outcome === 'success' ? null : result.error;
  const errorKind = result.outcome === 'success' ? null : result.error_kind;
  const duration = Math.round(durationMs);
  r.writer.complete(
    {
      owner: r.owner,
      next,
      attempt: {
        job_id: job.id,
        attempt,
        started_at: startedAt,
        finished_at: startedAt + duration,
        duration_ms: duration,
        outcome: result.outcome,
        error_kind: errorKind,
        status_code: result.status_code,
        error,
        response_body: result.response_body,
      },
    },
    () => {
      if (next.status === 'retrying' && !h.cancelled) onRetryDue(next.next_attempt_at);
    },
  );
  const nextStatus: JobStatus = h.cancelled ? 'cancelled' : next.status;
  const traceId = traceIdOf(job.traceparent);
  r.events.emit({
    type: 'attempt.finished',
    job_id: job.id,
    tenant_id: job.tenant_id,
    attempt,
    outcome: result.outcome,
    error_kind: errorKind,
    status_code: result.status_code,
    duration_ms: durationMs,
    next_status: nextStatus,
    next_attempt_at: next.status === 'retrying' && !h.cancelled ? next.next_attempt_at : null,
    trace_id: traceId,
  });
  if (!h.cancelled) {
    r.events.emit({ type: 'job.status', job_id: job.id, tenant_id: job.tenant_id, from: 'running', to: next.status, reason: result.outcome, trace_id: traceId });
  }
}
