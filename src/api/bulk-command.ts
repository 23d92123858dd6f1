// Runs a bulk command (retry or cancel by filter) as a series of bounded store steps.
//
// Each step changes at most STEP_JOBS jobs in one short transaction and the event loop is given
// back between steps, so a replay of a million jobs neither holds SQLite's write lock for long nor
// stops the service from serving and delivering meanwhile. Retried jobs go back to the store as
// queued: the engine claims them like any due job, and its per-(tenant, origin) token buckets pace
// them, so a replay reaches each destination no faster than its rate limit.
//
// With an Idempotency-Key the walk's progress lives in a store record advanced in the same
// transaction as each step's jobs: a repeat of a finished command answers its result and changes
// nothing; a repeat while it still runs, or after the process stopped mid-way, carries on from
// where it got and touches no job twice.

import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BULK_START, type BulkAction, type BulkProgress, type JobSelector } from '../domain/bulk.js';
import type { BulkOperationKey } from '../store/store.js';
import type { BulkResult } from './bulk-schemas.js';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';

/** Jobs changed per store step (one transaction). */
export const STEP_JOBS = 500;
/** Jobs counted per step of a dry run (reads only). */
const COUNT_STEP_JOBS = 1000;

export interface BulkCommand {
  action: BulkAction;
  selector: JobSelector;
  limit: number | null;
  dryRun: boolean;
  idempotencyKey: string | null;
}

export interface BulkOutcome {
  result: BulkResult;
  /** The Idempotency-Key was seen before: this is (or continues) that command. */
  replayed: boolean;
}

export async function runBulk(ctx: ApiContext, cmd: BulkCommand): Promise<BulkOutcome> {
  const { store, clock } = ctx;
  let progress: BulkProgress = BULK_START;
  let operation: BulkOperationKey | undefined;
  let replayed = false;
  // a dry run changes nothing, so it has nothing to make idempotent
  if (cmd.idempotencyKey !== null && !cmd.dryRun) {
    operation = { scope: cmd.selector.tenant_id ?? '*', key: cmd.idempotencyKey };
    const now = clock.now();
    const begun = await store.beginBulk(
      { ...operation, request_hash: requestHash(cmd), expires_at: now + ctx.config.IDEMPOTENCY_TTL_SECONDS * 1000 },
      now,
    );
    if (begun.kind === 'conflict') {
      throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different bulk request');
    }
    replayed = begun.kind === 'resumed';
    progress = begun.progress;
  }

  const chunk = cmd.dryRun ? COUNT_STEP_JOBS : STEP_JOBS;
  while (!progress.done) {
    const before = progress.cursor;
    const step = await store.bulkStep(
      { action: cmd.action, selector: cmd.selector, chunk, limit: cmd.limit, progress, apply: !cmd.dryRun, operation },
      clock.now(),
    );
    progress = step.progress;
    if (!cmd.dryRun && step.jobs.length > 0) announce(ctx, cmd.action, step.jobs);
    if (!progress.done && progress.cursor === before) throw new Error('bulk command made no progress');
    // let requests and deliveries run between steps
    await nextTurn();
  }
  return { result: resultOf(cmd, progress), replayed };
}

function announce(ctx: ApiContext, action: BulkAction, jobs: { id: string; tenant_id: string }[]): void {
  for (const j of jobs) {
    if (action === 'cancel') ctx.engine.forget(j.id);
    ctx.events.emit({
      type: 'job.status',
      job_id: j.id,
      tenant_id: j.tenant_id,
      from: action === 'retry' ? 'failed' : null,
      to: action === 'retry' ? 'queued' : 'cancelled',
      reason: `bulk_${action}`,
    });
  }
  // a cancel may have moved ordering-key lines on: their next jobs are due
  if (jobs.length > 0) ctx.engine.notifyDue(ctx.clock.now());
}

function resultOf(cmd: BulkCommand, progress: BulkProgress): BulkResult {
  const destinations = Object.entries(progress.tally.destinations)
    .map(([origin, jobs]) => ({ origin, jobs }))
    .sort((a, b) => b.jobs - a.jobs || (a.origin < b.origin ? -1 : 1));
  const listed = destinations.reduce((n, d) => n + d.jobs, 0);
  return {
    action: cmd.action,
    dry_run: cmd.dryRun,
    jobs: progress.tally.jobs,
    destinations,
    destinations_truncated: listed < progress.tally.jobs,
  };
}

/** The command as it runs (filters after defaults and the tenant rule), so a repeat is recognised. */
function requestHash(cmd: BulkCommand): string {
  const sel = cmd.selector;
  const canonical = [
    cmd.action,
    sel.tenant_id ?? null,
    sel.type ?? null,
    sel.origin ?? null,
    sel.statuses ?? null,
    sel.completed_from ?? null,
    sel.completed_before ?? null,
    sel.created_from ?? null,
    sel.created_before ?? null,
    sel.error_kind ?? null,
    sel.last_status_code ?? null,
    cmd.limit,
  ];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}
