// Row <-> domain mapping for the PostgreSQL driver. The columns are the SQLite driver's, with the
// same names and (after int8 parsing, see pool.ts) the same JavaScript types, so its row mapping is
// reused; what is PostgreSQL's own is turning a batch into one array per column for unnest().

import type { NewJob, JobStatus } from '../../domain/job.js';
import type { Attempt } from '../../domain/attempt.js';
import { attemptInsertParams, jobInsertParams } from '../sqlite/rows.js';

export { newJobToJob, rowToAttempt, rowToClaimedJob, rowToJob, type AttemptRow, type JobRow } from '../sqlite/rows.js';

/** The jobs columns a create writes, in the order of JOB_COLUMN_TYPES. */
export const JOB_COLUMNS = [
  'id', 'tenant_id', 'type', 'status', 'payload_json',
  'dest_url', 'dest_method', 'dest_timeout_ms', 'dest_headers_json',
  'retry_max_attempts', 'retry_base_delay_ms', 'retry_max_delay_ms', 'rate_limit_rps', 'rate_limit_burst',
  'rate_limit_max_in_flight', 'run_at', 'due_at', 'lease_owner', 'lease_expires_at', 'idempotency_key', 'dedupe_key', 'created_at', 'updated_at',
  'traceparent', 'tracestate',
] as const;

const JOB_COLUMN_TYPES: Record<(typeof JOB_COLUMNS)[number], string> = {
  id: 'text', tenant_id: 'text', type: 'text', status: 'text', payload_json: 'text',
  dest_url: 'text', dest_method: 'text', dest_timeout_ms: 'int4', dest_headers_json: 'text',
  retry_max_attempts: 'int4', retry_base_delay_ms: 'int8', retry_max_delay_ms: 'int8',
  rate_limit_rps: 'float8', rate_limit_burst: 'int4', rate_limit_max_in_flight: 'int4',
  run_at: 'int8', due_at: 'int8', lease_owner: 'text', lease_expires_at: 'int8',
  idempotency_key: 'text', dedupe_key: 'text', created_at: 'int8', updated_at: 'int8',
  traceparent: 'text', tracestate: 'text',
};

/** `unnest($1::text[], $2::text[], …)` over every job column, for INSERT … SELECT. */
export const JOB_UNNEST = `unnest(${JOB_COLUMNS.map((c, i) => `$${i + 1}::${JOB_COLUMN_TYPES[c]}[]`).join(', ')})`;

/** One array per column (JOB_COLUMNS order) for a batch of jobs to insert. */
export function jobColumnArrays(jobs: readonly { job: NewJob; status: JobStatus }[], now: number): unknown[][] {
  const cols: unknown[][] = JOB_COLUMNS.map(() => []);
  for (const { job, status } of jobs) {
    const p = jobInsertParams(job, status, now);
    JOB_COLUMNS.forEach((c, i) => cols[i]!.push(p[c] ?? null));
  }
  return cols;
}

export const ATTEMPT_COLUMNS = [
  'job_id', 'attempt', 'started_at', 'finished_at', 'duration_ms', 'outcome', 'error_kind', 'status_code', 'error', 'response_body',
] as const;

/** One array per column (ATTEMPT_COLUMNS order) for a batch of attempts. */
export function attemptColumnArrays(attempts: readonly Attempt[]): unknown[][] {
  const cols: unknown[][] = ATTEMPT_COLUMNS.map(() => []);
  for (const a of attempts) {
    const p = attemptInsertParams(a);
    ATTEMPT_COLUMNS.forEach((c, i) => cols[i]!.push(p[c] ?? null));
  }
  return cols;
}
