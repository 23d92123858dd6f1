// Small helpers for tests that drive jobs through a running service.
import assert from 'node:assert/strict';
import { eventually, type TestService } from './service.js';

export interface JobView {
  id: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  last_status_code: number | null;
  completed_at: string | null;
  [k: string]: unknown;
}

export async function createJob(svc: TestService, body: Record<string, unknown>, headers?: Record<string, string>): Promise<JobView> {
  const res = await svc.post('/v1/jobs', body, headers);
  const text = await res.text();
  assert.ok(res.status === 201 || res.status === 200, `create answered ${res.status}: ${text}`);
  return JSON.parse(text) as JobView;
}

export async function getJob(svc: TestService, id: string): Promise<JobView> {
  const res = await svc.get(`/v1/jobs/${id}`);
  assert.equal(res.status, 200);
  return (await res.json()) as JobView;
}

export async function waitForStatus(svc: TestService, id: string, status: string, timeoutMs = 10_000): Promise<JobView> {
  return eventually(async () => {
    const job = await getJob(svc, id);
    return job.status === status ? job : null;
  }, timeoutMs);
}

export async function attemptsOf(svc: TestService, id: string): Promise<Record<string, unknown>[]> {
  const res = await svc.get(`/v1/jobs/${id}/attempts`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { data: Record<string, unknown>[] }).data;
}
