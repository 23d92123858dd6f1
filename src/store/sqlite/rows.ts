// Row <-> domain mapping for the SQLite driver. Destination, retry and rate-limit settings are flat
// columns so only the headers need JSON; payload_json is passed through as the stored string.

import type { Attempt, AttemptOutcome, ErrorKind } from '../../domain/attempt.js';
import type { HttpMethod, Job, JobStatus, NewJob } from '../../domain/job.js';
import type { ClaimedJob } from '../store.js';

export interface JobRow {
  id: string;
  tenant_id: string;
  type: string;
  status: JobStatus;
  payload_json: string;
  dest_url: string;
  dest_method: HttpMethod;
  dest_timeout_ms: number;
  dest_headers_json: string;
  retry_max_attempts: number;
  retry_base_delay_ms: number;
  retry_max_delay_ms: number;
  rate_limit_rps: number | null;
  rate_limit_burst: number | null;
  rate_limit_max_in_flight: number | null;
  run_at: number;
  due_at: number;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  last_status_code: number | null;
  idempotency_key: string | null;
  dedupe_key: string | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
  traceparent: string | null;
  tracestate: string | null;
}

export interface AttemptRow {
  id: number;
  job_id: string;
  attempt: number;
  started_at: number;
  finished_at: number;
  duration_ms: number;
  outcome: AttemptOutcome;
  error_kind: ErrorKind | null;
  status_code: number | null;
  error: string | null;
  response_body: string | null;
}

const EMPTY_HEADERS = '{}';

function parseHeaders(json: string): Record<string, string> {
  // Most jobs carry no headers: skip the parse for them.
  return json === EMPTY_HEADERS ? {} : (JSON.parse(json) as Record<string, string>);
}

export function rowToJob(r: JobRow): Job {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    type: r.type,
    status: r.status,
    payload_json: r.payload_json,
    destination: {
      url: r.dest_url,
      method: r.dest_method,
      timeout_ms: r.dest_timeout_ms,
      headers: parseHeaders(r.dest_headers_json),
    },
    retry: {
      max_attempts: r.retry_max_attempts,
      base_delay_ms: r.retry_base_delay_ms,
      max_delay_ms: r.retry_max_delay_ms,
    },
    rate_limit:
      r.rate_limit_rps === null || r.rate_limit_burst === null
        ? null
        : r.rate_limit_max_in_flight === null
          ? { rps: r.rate_limit_rps, burst: r.rate_limit_burst }
          : { rps: r.rate_limit_rps, burst: r.rate_limit_burst, max_in_flight: r.rate_limit_max_in_flight },
    run_at: r.run_at,
    attempts: r.attempts,
    next_attempt_at: r.next_attempt_at,
    last_error: r.last_error,
    last_status_code: r.last_status_code,
    idempotency_key: r.idempotency_key,
    dedupe_key: r.dedupe_key,
    created_at: r.created_at,
    updated_at: r.updated_at,
    completed_at: r.completed_at,
    traceparent: r.traceparent ?? null,
    tracestate: r.tracestate ?? null,
  };
}

export function rowToClaimedJob(r: JobRow): ClaimedJob {
  return { ...rowToJob(r), lease_owner: r.lease_owner ?? '' };
}

/** Named parameters for the jobs INSERT. */
export function jobInsertParams(j: NewJob, status: JobStatus, now: number): Record<string, unknown> {
  const headers = j.destination.headers;
  return {
    id: j.id,
    tenant_id: j.tenant_id,
    type: j.type,
    status,
    payload_json: j.payload_json,
    dest_url: j.destination.url,
    dest_method: j.destination.method,
    dest_timeout_ms: j.destination.timeout_ms,
    dest_headers_json: hasKeys(headers) ? JSON.stringify(headers) : EMPTY_HEADERS,
    retry_max_attempts: j.retry.max_attempts,
    retry_base_delay_ms: j.retry.base_delay_ms,
    retry_max_delay_ms: j.retry.max_delay_ms,
    rate_limit_rps: j.rate_limit?.rps ?? null,
    rate_limit_burst: j.rate_limit?.burst ?? null,
    rate_limit_max_in_flight: j.rate_limit?.max_in_flight ?? null,
    run_at: j.run_at,
    due_at: j.run_at,
    lease_owner: j.lease?.owner ?? null,
    lease_expires_at: j.lease?.expires_at ?? null,
    idempotency_key: j.idempotency_key,
    dedupe_key: j.dedupe_key,
    created_at: now,
    updated_at: now,
    traceparent: j.traceparent ?? null,
    tracestate: j.tracestate ?? null,
  };
}

/** The Job a fresh insert produced, built without reading it back. */
export function newJobToJob(j: NewJob, status: JobStatus, now: number): Job {
  return {
    id: j.id,
    tenant_id: j.tenant_id,
    type: j.type,
    status,
    payload_json: j.payload_json,
    destination: { ...j.destination, headers: { ...j.destination.headers } },
    retry: { ...j.retry },
    rate_limit: j.rate_limit ? { ...j.rate_limit } : null,
    run_at: j.run_at,
    attempts: 0,
    next_attempt_at: null,
    last_error: null,
    last_status_code: null,
    idempotency_key: j.idempotency_key,
    dedupe_key: j.dedupe_key,
    created_at: now,
    updated_at: now,
    completed_at: null,
    traceparent: j.traceparent ?? null,
    tracestate: j.tracestate ?? null,
  };
}

export function rowToAttempt(r: AttemptRow): Attempt {
  return {
    job_id: r.job_id,
    attempt: r.attempt,
    started_at: r.started_at,
    finished_at: r.finished_at,
    duration_ms: r.duration_ms,
    outcome: r.outcome,
    error_kind: r.error_kind,
    status_code: r.status_code,
    error: r.error,
    response_body: r.response_body,
  };
}

/** Named parameters for the attempts INSERT. Timings may come from a monotonic timer: round them. */
export function attemptInsertParams(a: Attempt): Record<string, unknown> {
  return {
    job_id: a.job_id,
    attempt: a.attempt,
    started_at: Math.round(a.started_at),
    finished_at: Math.round(a.finished_at),
    duration_ms: Math.round(a.duration_ms),
    outcome: a.outcome,
    error_kind: a.error_kind,
    status_code: a.status_code,
    error: a.error,
    response_body: a.response_body,
  };
}

function hasKeys(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
}
