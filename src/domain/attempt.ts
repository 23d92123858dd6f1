// One delivery attempt and its outcome. Outcomes are values, never exceptions: the dispatcher
// turns every network or HTTP result into one of these, and the retry policy decides from it.

export const ERROR_KINDS = ['timeout', 'connect', 'dns', 'tls', 'http', 'blocked'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export const ATTEMPT_OUTCOMES = ['success', 'retryable_error', 'permanent_error'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/** What one HTTP exchange produced, as the dispatcher classifies it. */
export type DeliveryResult =
  | { outcome: 'success'; status_code: number; response_body: string | null }
  | {
      outcome: 'retryable_error';
      error_kind: ErrorKind;
      status_code: number | null;
      error: string;
      response_body: string | null;
      /** From a Retry-After header on 429/503: the receiver asks for at least this many ms of quiet. */
      retry_after_ms: number | null;
    }
  | {
      outcome: 'permanent_error';
      error_kind: ErrorKind;
      status_code: number | null;
      error: string;
      response_body: string | null;
    };

export interface Attempt {
  job_id: string;
  /** 1-based within the job's current attempt budget (a manual retry starts a new budget at 1). */
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
