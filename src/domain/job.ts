/*
 * The job state machine.
 *
 *   scheduled ──(run_at reached)──▶ queued ──(claimed, attempt starts)──▶ running
 *   running ──(2xx)──────────────────────────────────────────────────────▶ success
 *   running ──(retryable error, attempts left)──▶ retrying ──(backoff over)──▶ running
 *   running ──(permanent error, or attempts exhausted)───────────────────▶ failed   (the dead-letter queue)
 *   scheduled | queued | retrying | running ──(cancel)───────────────────▶ cancelled
 *   failed | cancelled ──(retry: fresh attempt budget)───────────────────▶ queued
 *   running ──(lease expired: the process died)──▶ queued | retrying (delivered again: at-least-once)
 *
 * A job waiting in a dispatcher's memory (claimed under a lease but not yet sent) keeps its status
 * (queued/scheduled/retrying); `running` means an attempt has been in flight for over 100 ms (the
 * engine does not write it for shorter ones). success, failed and cancelled
 * are terminal: only an explicit retry leaves failed or cancelled.
 */

export const JOB_STATUSES = ['scheduled', 'queued', 'running', 'retrying', 'success', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: readonly JobStatus[] = ['success', 'failed', 'cancelled'];
/** Statuses a job waits in before an attempt: the ones a dispatcher claims from. */
export const WAITING_STATUSES: readonly JobStatus[] = ['scheduled', 'queued', 'retrying'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export const HTTP_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface Destination {
  url: string;
  method: HttpMethod;
  timeout_ms: number;
  headers: Record<string, string>;
}

export interface RetrySettings {
  max_attempts: number;
  base_delay_ms: number;
  max_delay_ms: number;
}

export interface RateLimit {
  rps: number;
  burst: number;
  /** Attempts in flight at most for this job's (tenant, origin); DESTINATION_MAX_IN_FLIGHT when absent. */
  max_in_flight?: number;
}

/** A job as stored. Times are epoch milliseconds; the API renders them as RFC 3339. */
export interface Job {
  id: string;
  tenant_id: string;
  type: string;
  status: JobStatus;
  /** The payload exactly as JSON text: it is stored and sent as these bytes. */
  payload_json: string;
  destination: Destination;
  retry: RetrySettings;
  rate_limit: RateLimit | null;
  run_at: number;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  last_status_code: number | null;
  idempotency_key: string | null;
  dedupe_key: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
  /**
   * W3C trace context of the job's create span (its attempts are children of it), and the client's
   * tracestate; null when the job has no trace (observability/tracing.ts).
   */
  traceparent?: string | null;
  tracestate?: string | null;
}

/** What the API hands the store to create one job: a validated request with defaults applied. */
export interface NewJob {
  id: string;
  tenant_id: string;
  type: string;
  payload_json: string;
  destination: Destination;
  retry: RetrySettings;
  rate_limit: RateLimit | null;
  run_at: number;
  idempotency_key: string | null;
  /** Hash of the request body, to tell a replay from a reuse of the key with another body. */
  idempotency_hash: string | null;
  idempotency_expires_at: number | null;
  dedupe_key: string | null;
  /** (tenant, dedupe_key) or the content hash; null when deduplication is off. */
  dedupe_hash: string | null;
  dedupe_expires_at: number | null;
  /**
   * Claimed at insert: a job due now, created by a process whose engine has room for it, is written
   * already held by that engine, which starts it without a separate claim. Null otherwise.
   */
  lease?: { owner: string; expires_at: number } | null;
  /** The create span's traceparent and the client's tracestate (see Job); absent: no trace. */
  traceparent?: string | null;
  tracestate?: string | null;
}

export type CreateOutcome =
  | { kind: 'created'; job: Job }
  | { kind: 'idempotent_replay'; job: Job }
  | { kind: 'idempotency_conflict'; job_id: string }
  | { kind: 'deduplicated'; job: Job };
