// Examples for the OpenAPI document, per operationId: request bodies and answers by status.
// test/openapi.test.ts checks each one against its schema, so they cannot drift from the API.

const JOB_ID = '01936f0e-4c1a-7b2e-9f3d-5a6b7c8d9e0f';

const job = {
  id: JOB_ID,
  tenant_id: 'demo',
  type: 'order.completed',
  status: 'queued',
  payload: { order_id: 42, status: 'completed' },
  destination: { url: 'https://hooks.example.com/orders', method: 'POST', timeout_ms: 5000, headers: { 'x-source': 'shop' } },
  retry: { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30000 },
  rate_limit: { rps: 10, burst: 20 },
  run_at: '2026-11-30T12:00:00.000Z',
  attempts: 0,
  next_attempt_at: null,
  last_error: null,
  last_status_code: null,
  idempotency_key: 'order-42-completed',
  dedupe_key: null,
  ordering_key: null,
  waiting_for_key: false,
  created_at: '2026-11-30T12:00:00.000Z',
  updated_at: '2026-11-30T12:00:00.000Z',
  completed_at: null,
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
};

const failedJob = {
  ...job,
  status: 'failed',
  attempts: 5,
  last_error: 'HTTP 503',
  last_status_code: 503,
  updated_at: '2026-11-30T12:01:02.114Z',
  completed_at: '2026-11-30T12:01:02.114Z',
};

const error = (code: string, message: string, details?: unknown) => ({ error: details === undefined ? { code, message } : { code, message, details } });

const SCHEDULE_ID = '01936f0e-4c1a-7b2e-9f3d-5a6b7c8d9e10';
const schedule = {
  id: SCHEDULE_ID,
  tenant_id: 'demo',
  cron: '30 2 * * *',
  time_zone: 'America/New_York',
  status: 'active',
  job: {
    tenant_id: 'demo',
    type: 'report.nightly',
    payload: { report: 'sales' },
    destination: { url: 'https://hooks.example.com/reports', method: 'POST', timeout_ms: 10000, headers: {} },
  },
  start_at: null,
  end_at: null,
  missed_ticks: 'catch_up',
  catch_up_limit: 1,
  next_tick_at: '2026-12-01T07:30:00.000Z',
  last_tick_at: null,
  last_job_id: null,
  created_at: '2026-11-30T12:00:00.000Z',
  updated_at: '2026-11-30T12:00:00.000Z',
};

export interface OperationExamples {
  request?: Record<string, unknown>;
  responses?: Record<string, Record<string, unknown>>;
}

export const OPERATION_EXAMPLES: Record<string, OperationExamples> = {
  createJob: {
    request: {
      now: {
        tenant_id: 'demo',
        type: 'order.completed',
        payload: { order_id: 42, status: 'completed' },
        destination: { url: 'https://hooks.example.com/orders', method: 'POST', timeout_ms: 5000, headers: { 'x-source': 'shop' } },
        retry: { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30000 },
        rate_limit: { rps: 10, burst: 20 },
      },
      later: {
        tenant_id: 'demo',
        type: 'reminder.due',
        payload: { user: 7 },
        destination: { url: 'https://hooks.example.com/reminders' },
        run_at: '2026-12-01T14:00:00Z',
      },
      in_order: {
        tenant_id: 'demo',
        type: 'order.shipped',
        payload: { order_id: 42 },
        destination: { url: 'https://hooks.example.com/orders' },
        ordering_key: 'order-42',
      },
    },
    responses: {
      201: { created: job, behind_its_key: { ...job, type: 'order.shipped', ordering_key: 'order-42', waiting_for_key: true } },
      200: { replayed: job },
      422: {
        invalid: error('validation_failed', 'invalid body: body.destination.url must be an absolute http or https URL', {
          fields: [{ field: 'body.destination.url', message: 'must be an absolute http or https URL' }],
        }),
      },
      401: { no_key: error('unauthorized', 'send an API key: Authorization: Bearer <key>') },
    },
  },
  listJobs: { responses: { 200: { page: { data: [job], next_cursor: JOB_ID } } } },
  getJob: { responses: { 200: { job }, 404: { missing: error('not_found', 'job not found') } } },
  listAttempts: {
    responses: {
      200: {
        attempts: {
          data: [
            {
              attempt: 1,
              started_at: '2026-11-30T12:00:00.010Z',
              finished_at: '2026-11-30T12:00:00.131Z',
              duration_ms: 121,
              outcome: 'retryable_error',
              error_kind: 'http',
              status_code: 503,
              error: 'HTTP 503',
              response_body: 'upstream unavailable',
            },
          ],
        },
      },
    },
  },
  cancelJob: {
    responses: {
      200: { cancelled: { ...job, status: 'cancelled', completed_at: '2026-11-30T12:00:01.000Z' } },
      409: { finished: error('conflict', 'job is already success', { status: 'success' }) },
    },
  },
  retryJob: { responses: { 200: { queued: { ...failedJob, status: 'queued', attempts: 0, completed_at: null } } } },
  listDeadLetters: { responses: { 200: { page: { data: [failedJob], next_cursor: null } } } },
  retryDeadLetters: {
    request: {
      confirm_first: { tenant_id: 'demo', destination_origin: 'https://hooks.example.com', failed_after: '2026-11-30T00:00:00Z', dry_run: true },
      replay: { tenant_id: 'demo', destination_origin: 'https://hooks.example.com', failed_after: '2026-11-30T00:00:00Z' },
      timeouts_only: { error_kind: 'timeout', limit: 10000 },
    },
    responses: {
      200: {
        replayed: {
          action: 'retry',
          dry_run: false,
          jobs: 1250,
          destinations: [{ origin: 'https://hooks.example.com', jobs: 1250 }],
          destinations_truncated: false,
        },
      },
      422: { key_reused: error('idempotency_key_reused', 'this Idempotency-Key was used with a different bulk request') },
    },
  },
  cancelJobs: {
    request: { scheduled_of_a_type: { tenant_id: 'demo', type: 'reminder.due', statuses: ['scheduled'] } },
    responses: {
      200: {
        cancelled: {
          action: 'cancel',
          dry_run: false,
          jobs: 3,
          destinations: [{ origin: 'https://hooks.example.com', jobs: 3 }],
          destinations_truncated: false,
        },
      },
    },
  },
  createSchedule: {
    request: {
      nightly: {
        cron: '30 2 * * *',
        time_zone: 'America/New_York',
        job: { tenant_id: 'demo', type: 'report.nightly', payload: { report: 'sales' }, destination: { url: 'https://hooks.example.com/reports' } },
      },
      every_ten_seconds_for_a_day: {
        cron: '*/10 * * * * *',
        job: { tenant_id: 'demo', type: 'heartbeat', payload: {}, destination: { url: 'https://hooks.example.com/beat' } },
        start_at: '2026-12-01T00:00:00Z',
        end_at: '2026-12-02T00:00:00Z',
        missed_ticks: 'skip',
      },
    },
    responses: {
      201: { created: schedule },
      400: { bad_cron: error('invalid_cron_expression', 'cron "61 * * * *" is not valid: Constraint error, got value 61 expected range 0-59') },
    },
  },
  listSchedules: { responses: { 200: { page: { data: [schedule], next_cursor: null } } } },
  getSchedule: { responses: { 200: { schedule }, 404: { missing: error('not_found', 'schedule not found') } } },
  pauseSchedule: { responses: { 200: { paused: { ...schedule, status: 'paused', next_tick_at: null } } } },
};
