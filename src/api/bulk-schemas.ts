// The shapes of the bulk commands (POST /v1/dlq/retry, POST /v1/jobs/cancel): filters that select
// jobs, and the answer saying how many jobs and which destinations.

import { z } from 'zod';
import { ERROR_KINDS } from '../domain/attempt.js';
import { BULK_STATUSES } from '../domain/bulk.js';
import { tenantIdSchema } from './schemas.js';

/** Jobs one bulk command touches at most. */
export const MAX_BULK_LIMIT = 1_000_000;

// A cross-field rule runs even when another field already failed, so one answer names every bad field.
const evenAfterOtherIssues = {
  when: (p: { value: unknown }) => typeof p.value === 'object' && p.value !== null && !Array.isArray(p.value),
};

const originSchema = z
  .string()
  .max(2048)
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname.length > 0 && `${u.origin}/` === u.href;
    } catch {
      return false;
    }
  }, 'must be an origin: http(s)://host[:port], no path, query or credentials')
  .transform((s) => new URL(s).origin)
  .describe("The destination URL's origin, scheme://host[:port]: the key rate limits are kept under.");

const time = (what: string) => z.iso.datetime({ offset: true }).describe(`RFC 3339: ${what}`);

const common = {
  tenant_id: tenantIdSchema.optional().describe("Only this tenant's jobs. A tenant's API key may name only its own tenant (and is limited to it when it names none)."),
  type: z.string().min(1).max(128).optional(),
  destination_origin: originSchema.optional(),
  error_kind: z.enum(ERROR_KINDS).optional().describe("The error kind of the job's last attempt."),
  status_code: z.number().int().min(100).max(599).optional().describe("The HTTP status of the job's last attempt (last_status_code)."),
  limit: z.number().int().min(1).max(MAX_BULK_LIMIT).optional().describe('Act on at most this many jobs, oldest first. Default: every matching job.'),
  dry_run: z.boolean().default(false).describe('Change nothing: answer how many jobs would be touched, and their destinations.'),
};

const ordered = (from: string, before: string) => (b: Record<string, unknown>) =>
  !(typeof b[from] === 'string' && typeof b[before] === 'string' && Date.parse(b[from]) >= Date.parse(b[before]));

export const bulkRetryBodySchema = z
  .strictObject({
    ...common,
    failed_after: time('only jobs that failed at or after this time').optional(),
    failed_before: time('only jobs that failed before this time').optional(),
  })
  .refine(ordered('failed_after', 'failed_before'), { message: 'failed_after must be before failed_before', path: ['failed_before'], ...evenAfterOtherIssues })
  .meta({ id: 'BulkRetryRequest' });
export type BulkRetryBody = z.infer<typeof bulkRetryBodySchema>;

export const bulkCancelBodySchema = z
  .strictObject({
    ...common,
    statuses: z
      .array(z.enum(BULK_STATUSES.cancel.allowed as ['scheduled', 'queued', 'retrying']))
      .min(1)
      .max(3)
      .optional()
      .describe('Only jobs in these statuses. Default: scheduled, queued and retrying (running jobs finish their attempt).'),
    created_after: time('only jobs created at or after this time').optional(),
    created_before: time('only jobs created before this time').optional(),
  })
  .refine(ordered('created_after', 'created_before'), { message: 'created_after must be before created_before', path: ['created_before'], ...evenAfterOtherIssues })
  .meta({ id: 'BulkCancelRequest' });
export type BulkCancelBody = z.infer<typeof bulkCancelBodySchema>;

export const bulkResultSchema = z
  .object({
    action: z.enum(['retry', 'cancel']),
    dry_run: z.boolean(),
    jobs: z.number().int().describe('Jobs retried or cancelled (with dry_run: that would be).'),
    destinations: z
      .array(z.object({ origin: z.string(), jobs: z.number().int() }))
      .describe('Jobs per destination origin, most first; at most 100 origins are named.'),
    destinations_truncated: z.boolean().describe('More origins than are named: their jobs count in `jobs` only.'),
  })
  .meta({ id: 'BulkResult' });
export type BulkResult = z.infer<typeof bulkResultSchema>;
