// Assertions the API tests share: the error shape, the Job shape, "nothing was written", waiting on a status.
import assert from 'node:assert/strict';
import { eventually, type TestService } from '../support/service.js';

export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
export const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export const JOB_FIELDS = [
  'id',
  'tenant_id',
  'type',
  'status',
  'payload',
  'destination',
  'retry',
  'rate_limit',
  'run_at',
  'attempts',
  'next_attempt_at',
  'last_error',
  'last_status_code',
  'idempotency_key',
  'dedupe_key',
  'created_at',
  'updated_at',
  'completed_at',
  'trace_id',
].sort();

/** A job as the API renders it (the fields tests read). */
export interface JobView {
  id: string;
  tenant_id: string;
  type: string;
  status: string;
  payload: unknown;
  destination: { url: string; method: string; timeout_ms: number; headers: Record<string, string> };
  retry: { max_attempts: number; base_delay_ms: number; max_delay_ms: number };
  rate_limit: { rps: number; burst: number } | null;
  run_at: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  last_status_code: number | null;
  idempotency_key: string | null;
  dedupe_key: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

/** The answer of a bulk command (POST /v1/dlq/retry, POST /v1/jobs/cancel). */
export interface BulkView {
  action: string;
  dry_run: boolean;
  jobs: number;
  destinations: { origin: string; jobs: number }[];
  destinations_truncated: boolean;
}

export interface ErrorView {
  code: string;
  message: string;
  details?: { fields?: { field: string; message: string }[] } & Record<string, unknown>;
}

export interface PageView {
  data: JobView[];
  next_cursor: string | null;
}

const nullableTime = (v: unknown) => v === null || (typeof v === 'string' && RFC3339_UTC.test(v));
const nullableString = (v: unknown) => v === null || typeof v === 'string';
const nullableInt = (v: unknown) => v === null || Number.isInteger(v);

/** Checks every Job field is present, with its type (times RFC 3339 UTC, id a UUIDv7). */
export function assertJobShape(job: JobView): void {
  assert.deepEqual(Object.keys(job).sort(), JOB_FIELDS, 'the job has exactly the documented fields');
  assert.match(job.id, UUIDV7);
  assert.equal(typeof job.tenant_id, 'string');
  assert.equal(typeof job.type, 'string');
  assert.ok(['scheduled', 'queued', 'running', 'retrying', 'success', 'failed', 'cancelled'].includes(job.status), job.status);
  assert.ok(job.payload !== undefined);
  assert.deepEqual(Object.keys(job.destination).sort(), ['headers', 'method', 'timeout_ms', 'url']);
  assert.equal(typeof job.destination.url, 'string');
  assert.ok(['POST', 'PUT', 'PATCH', 'DELETE'].includes(job.destination.method));
  assert.ok(Number.isInteger(job.destination.timeout_ms));
  assert.equal(typeof job.destination.headers, 'object');
  assert.deepEqual(Object.keys(job.retry).sort(), ['base_delay_ms', 'max_attempts', 'max_delay_ms']);
  for (const v of Object.values(job.retry)) assert.ok(Number.isInteger(v));
  if (job.rate_limit !== null) {
    assert.deepEqual(Object.keys(job.rate_limit).sort(), ['burst', 'rps']);
    assert.equal(typeof job.rate_limit.rps, 'number');
    assert.ok(Number.isInteger(job.rate_limit.burst));
  }
  assert.match(job.run_at, RFC3339_UTC);
  assert.ok(Number.isInteger(job.attempts) && job.attempts >= 0);
  assert.ok(nullableTime(job.next_attempt_at), `next_attempt_at ${job.next_attempt_at}`);
  assert.ok(nullableString(job.last_error));
  assert.ok(nullableInt(job.last_status_code));
  assert.ok(nullableString(job.idempotency_key));
  assert.ok(nullableString(job.dedupe_key));
  assert.match(job.created_at, RFC3339_UTC);
  assert.match(job.updated_at, RFC3339_UTC);
  assert.ok(nullableTime(job.completed_at), `completed_at ${job.completed_at}`);
}

/** Checks the answer is {"error": {"code", "message", "details"?}} as JSON with this status and code. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorView> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { error: ErrorView };
  assert.deepEqual(Object.keys(body), ['error']);
  const keys = Object.keys(body.error).sort();
  assert.ok(keys.join() === 'code,message' || keys.join() === 'code,details,message', `error keys: ${keys.join()}`);
  assert.equal(body.error.code, code, text);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  return body.error;
}

/** The fields a validation error names. */
export function fieldsOf(err: ErrorView): string[] {
  assert.ok(Array.isArray(err.details?.fields), `details.fields is missing: ${JSON.stringify(err)}`);
  return (err.details?.fields ?? []).map((f) => f.field);
}

/** Checks a validation error names this field (or something inside it). */
export function assertNames(err: ErrorView, field: string): void {
  const fields = fieldsOf(err);
  assert.ok(
    fields.some((f) => f === field || f.startsWith(`${field}.`)),
    `expected ${field} among ${JSON.stringify(fields)}`,
  );
}

/** Checks no job exists at all: the request before it wrote nothing. */
export async function assertNoJobs(svc: TestService): Promise<void> {
  const res = await svc.get('/v1/jobs?limit=1000');
  assert.equal(res.status, 200);
  const page = (await res.json()) as PageView;
  assert.deepEqual(page.data, [], 'no job was written');
  const counts = await svc.store.countByStatus();
  assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 0, 'the store holds no job');
}

export async function createJob(svc: TestService, body: unknown, headers?: Record<string, string>): Promise<JobView> {
  const res = await svc.post('/v1/jobs', body, headers);
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text) as JobView;
}

export async function getJob(svc: TestService, id: string): Promise<JobView> {
  const res = await svc.get(`/v1/jobs/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as JobView;
}

/** Waits (bounded) until the job reaches a status, and returns it. */
export function waitForStatus(svc: TestService, id: string, status: string, timeoutMs = 10_000): Promise<JobView> {
  return eventually(async () => {
    const job = await getJob(svc, id);
    return job.status === status ? job : undefined;
  }, timeoutMs);
}

/** Walks a list endpoint with its cursor to the end, returning every page. */
export async function walk(svc: TestService, path: string, limit: number, maxPages = 1000): Promise<PageView[]> {
  const pages: PageView[] = [];
  let cursor: string | null = null;
  const sep = path.includes('?') ? '&' : '?';
  do {
    const url: string = `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await svc.get(url);
    assert.equal(res.status, 200, url);
    const page = (await res.json()) as PageView;
    assert.ok(page.data.length <= limit, `a page holds at most ${limit}`);
    pages.push(page);
    cursor = page.next_cursor;
    assert.ok(pages.length <= maxPages, 'the cursor walk ends');
  } while (cursor !== null);
  return pages;
}

/** A day's delay: the job stays scheduled (and undelivered) for the whole test. */
export const LATER = { delay_ms: 86_400_000 };
