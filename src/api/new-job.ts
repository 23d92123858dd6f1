// Turns a validated create request into the NewJob the store writes: defaults, times, hashes.

import { createHash } from 'node:crypto';
import { newId } from '../domain/ids.js';
import type { NewJob } from '../domain/job.js';
import type { CreateJobBody } from './schemas.js';

export interface NewJobSettings {
  dedupeWindowMs: number;
  idempotencyTtlMs: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

/**
 * The request as it will run, defaults filled in, so a replay that spells out a default (or gives
 * run_at with another offset) is the same request, while any change to what runs is not.
 */
function requestHash(body: CreateJobBody, payloadJson: string, retry: NewJob['retry'], rateLimit: NewJob['rate_limit']): string {
  const runAt = body.run_at === undefined ? null : Date.parse(body.run_at);
  const parts: unknown[] = [body.type, body.destination, retry, rateLimit, runAt, body.delay_ms ?? null, body.dedupe_key ?? null, payloadJson];
  // only when given, so the request hash of a job without it is what it always was
  if (body.ordering_key !== undefined) parts.push({ ordering_key: body.ordering_key });
  return sha256(JSON.stringify(parts));
}

export function toNewJob(
  body: CreateJobBody,
  payloadJson: string,
  idempotencyKey: string | null,
  now: number,
  s: NewJobSettings,
): NewJob {
  let runAt = now;
  if (body.run_at !== undefined) runAt = Math.max(now, Date.parse(body.run_at));
  else if (body.delay_ms !== undefined) runAt = now + body.delay_ms;
  const destination = body.destination;
  const retry = body.retry ?? { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30_000 };
  const rateLimit: NewJob['rate_limit'] = body.rate_limit
    ? { rps: body.rate_limit.rps, burst: body.rate_limit.burst ?? Math.max(1, Math.ceil(body.rate_limit.rps)) }
    : null;
  // only when given, so the request hash of a job without it is what it always was
  if (rateLimit && body.rate_limit?.max_in_flight !== undefined) rateLimit.max_in_flight = body.rate_limit.max_in_flight;

  let dedupeHash: string | null = null;
  if (s.dedupeWindowMs > 0) {
    dedupeHash = body.dedupe_key !== undefined
      ? `k:${body.dedupe_key}`
      : `h:${sha256(`${body.type}\n${JSON.stringify(destination)}\n${payloadJson}`)}`;
  }
  return {
    id: newId(),
    tenant_id: body.tenant_id,
    type: body.type,
    payload_json: payloadJson,
    destination,
    retry,
    rate_limit: rateLimit,
    run_at: runAt,
    idempotency_key: idempotencyKey,
    idempotency_hash: idempotencyKey === null ? null : requestHash(body, payloadJson, retry, rateLimit),
    idempotency_expires_at: idempotencyKey === null ? null : now + s.idempotencyTtlMs,
    dedupe_key: body.dedupe_key ?? null,
    dedupe_hash: dedupeHash,
    dedupe_expires_at: dedupeHash === null ? null : now + s.dedupeWindowMs,
    ordering_key: body.ordering_key ?? null,
  };
}
