// Bulk commands for the SQLite driver (see BulkStep and Store.bulkStep in ../store.ts).
//
// A command walks each selected status in id order over the (status, id) or (tenant_id, status, id)
// index, a bounded slice per step: it examines at most 4 × chunk rows and changes at most chunk,
// so no step holds the write lock for long however large the selection. The cursor is
// "<status index>:<last id examined>"; ids only grow, so a walk never sees a job twice.

import type Database from 'better-sqlite3';
import { addToTally, BULK_START, BULK_STATUSES, originOf, type BulkProgress, type JobSelector } from '../../domain/bulk.js';
import type { OrderingKey } from '../../domain/ordering.js';
import type { BulkBegin, BulkOperationKey, BulkStep, BulkStepResult } from '../store.js';
import { NOT_SUCCESS } from './migrations.js';
import type { OrderingLines } from './ordering.js';

type Named = Record<string, unknown>;
type Stmt<R = unknown> = Database.Statement<Named, R>;

interface ScanRow {
  id: string;
  tenant_id: string;
  dest_url: string;
  hit: number;
}

type Changed = { id: string; tenant_id: string; dest_url: string; ordering_key: string | null };

/** Rows examined per step, per job it may act on. */
const SCAN_FACTOR = 4;
export const MAX_BULK_CHUNK = 1000;

export class SqliteBulk {
  private readonly scans = new Map<string, Stmt<ScanRow>>();
  private readonly s: {
    getOp: Stmt<{ request_hash: string; progress_json: string; expires_at: number }>;
    putOp: Stmt;
    saveProgress: Stmt;
    retry: Stmt<Changed>;
    cancel: Stmt<Changed>;
    pruneOps: Stmt;
  };
  private readonly beginTx: (op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number) => BulkBegin;
  private readonly stepTx: (step: BulkStep, now: number) => BulkStepResult;

  constructor(
    private readonly db: Database.Database,
    private readonly lines: OrderingLines,
  ) {
    // the rate limiter's key, so a filter by origin selects exactly what one bucket paces
    db.function('pulsegate_origin', { deterministic: true }, (url: unknown) => originOf(String(url)));
    this.s = {
      getOp: db.prepare(`SELECT request_hash, progress_json, expires_at FROM bulk_operations WHERE scope = @scope AND key = @key`),
      putOp: db.prepare(`
        INSERT INTO bulk_operations (scope, key, request_hash, progress_json, created_at, expires_at)
        VALUES (@scope, @key, @request_hash, @progress_json, @now, @expires_at)
        ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
          progress_json = excluded.progress_json, created_at = excluded.created_at, expires_at = excluded.expires_at`),
      saveProgress: db.prepare(`UPDATE bulk_operations SET progress_json = @progress_json WHERE scope = @scope AND key = @key`),
      // the same changes as the one-job retry and cancel, guarded on a status the command selects
      retry: db.prepare(`
        UPDATE jobs SET status = 'queued', due_at = @now, run_at = min(run_at, @now), attempts = 0, completed_at = NULL,
          next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status IN (SELECT value FROM json_each(@statuses))
        RETURNING id, tenant_id, dest_url, ordering_key`),
      cancel: db.prepare(`
        UPDATE jobs SET status = 'cancelled', completed_at = @now, updated_at = @now, next_attempt_at = NULL,
          lease_owner = NULL, lease_expires_at = NULL
        WHERE id = @id AND status IN (SELECT value FROM json_each(@statuses))
        RETURNING id, tenant_id, dest_url, ordering_key`),
      pruneOps: db.prepare(`DELETE FROM bulk_operations WHERE expires_at <= @now`),
    };
    const immediate = <A extends unknown[], R>(fn: (...args: A) => R): ((...args: A) => R) => {
      const tx = db.transaction(fn);
      return (...args: A) => tx.immediate(...args) as R;
    };
    this.beginTx = immediate((op, now) => this.beginInTx(op, now));
    this.stepTx = immediate((step, now) => this.stepInTx(step, now));
  }

  begin(op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number): BulkBegin {
    return this.beginTx(op, now);
  }

  /** A dry run only reads: no write transaction. */
  step(step: BulkStep, now: number): BulkStepResult {
    if (!Number.isInteger(step.chunk) || step.chunk < 1 || step.chunk > MAX_BULK_CHUNK) {
      throw new RangeError(`chunk must be an integer in 1..${MAX_BULK_CHUNK}, got ${step.chunk}`);
    }
    return step.apply ? this.stepTx(step, now) : this.stepInTx(step, now);
  }

  pruneExpired(now: number): number {
    return this.s.pruneOps.run({ now }).changes;
  }

  private beginInTx(op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number): BulkBegin {
    const row = this.s.getOp.get({ scope: op.scope, key: op.key });
    if (row && row.expires_at > now) {
      return row.request_hash === op.request_hash ? { kind: 'resumed', progress: JSON.parse(row.progress_json) as BulkProgress } : { kind: 'conflict' };
    }
    this.s.putOp.run({ ...op, progress_json: JSON.stringify(BULK_START), now });
    return { kind: 'started', progress: BULK_START };
  }

  private stepInTx(step: BulkStep, now: number): BulkStepResult {
    const op = step.apply ? step.operation : undefined;
    let progress = step.progress;
    if (op) {
      const row = this.s.getOp.get({ scope: op.scope, key: op.key });
      if (row) progress = JSON.parse(row.progress_json) as BulkProgress;
    }
    if (progress.done) return { progress, jobs: [] };

    const statuses = step.selector.statuses ?? BULK_STATUSES[step.action].default;
    const budget = Math.min(step.chunk, step.limit === null ? Infinity : step.limit - progress.tally.jobs);
    let [index, after] = parseCursor(progress.cursor);
    let scanLeft = step.chunk * SCAN_FACTOR;
    const taken: ScanRow[] = [];
    while (index < statuses.length && taken.length < budget && scanLeft > 0) {
      const rows = this.scan(step.selector).all({ ...selectorParams(step.selector), status: statuses[index], after, limit: scanLeft });
      let full = false;
      for (const row of rows) {
        scanLeft--;
        after = row.id;
        if (row.hit === 1) taken.push(row);
        if (taken.length >= budget) {
          full = true;
          break;
        }
      }
      if (!full && scanLeft > 0) {
        // fewer rows than asked for: this status is walked to its end
        index++;
        after = '';
      }
    }

    let changed: { id: string; tenant_id: string; dest_url: string }[] = taken;
    if (step.apply) {
      const stmt = step.action === 'retry' ? this.s.retry : this.s.cancel;
      const guard = JSON.stringify(statuses);
      const cancelledKeys: OrderingKey[] = [];
      changed = [];
      for (const row of taken) {
        const r = stmt.get({ id: row.id, now, statuses: guard });
        if (!r) continue;
        changed.push(r);
        // keyed jobs as the one-job commands treat them (ordering.ts), in the walk's order
        if (r.ordering_key === null) continue;
        const key = { tenant_id: r.tenant_id, key: r.ordering_key };
        if (step.action === 'retry') this.lines.requeue(r.id, key);
        else cancelledKeys.push(key);
      }
      if (cancelledKeys.length > 0) this.lines.settle(cancelledKeys, now);
    }
    const tally = addToTally(progress.tally, changed.map((j) => j.dest_url));
    const done = index >= statuses.length || (step.limit !== null && tally.jobs >= step.limit);
    const next: BulkProgress = { cursor: `${index}:${after}`, done, tally };
    if (op) this.s.saveProgress.run({ scope: op.scope, key: op.key, progress_json: JSON.stringify(next) });
    return { progress: next, jobs: changed.map((j) => ({ id: j.id, tenant_id: j.tenant_id })) };
  }

  /** The scan for one combination of filters, prepared once. */
  private scan(sel: JobSelector): Stmt<ScanRow> {
    const hit: string[] = [];
    let key = sel.tenant_id !== undefined ? 't' : '';
    const add = (flag: string, present: boolean, sql: string) => {
      if (!present) return;
      hit.push(sql);
      key += flag;
    };
    add('y', sel.type !== undefined, 'type = @type');
    add('o', sel.origin !== undefined, 'pulsegate_origin(dest_url) = @origin');
    add('c', sel.completed_from !== undefined, 'completed_at >= @completed_from');
    add('C', sel.completed_before !== undefined, 'completed_at < @completed_before');
    add('r', sel.created_from !== undefined, 'created_at >= @created_from');
    add('R', sel.created_before !== undefined, 'created_at < @created_before');
    add('s', sel.last_status_code !== undefined, 'last_status_code = @last_status_code');
    // the job's last attempt (attempts_job is (job_id, id))
    add('e', sel.error_kind !== undefined, '(SELECT a.error_kind FROM attempts a WHERE a.job_id = jobs.id ORDER BY a.id DESC LIMIT 1) = @error_kind');
    let stmt = this.scans.get(key);
    if (!stmt) {
      const tenant = sel.tenant_id !== undefined;
      stmt = this.db.prepare<Named, ScanRow>(`
        SELECT id, tenant_id, dest_url, ${hit.length ? `coalesce((${hit.join(') AND (')}), 0)` : '1'} AS hit
        FROM jobs INDEXED BY ${tenant ? 'jobs_tenant_status' : 'jobs_status'}
        WHERE ${tenant ? 'tenant_id = @tenant_id AND ' : ''}status = @status AND ${NOT_SUCCESS} AND id > @after
        ORDER BY id LIMIT @limit`);
      this.scans.set(key, stmt);
    }
    return stmt;
  }
}

function parseCursor(cursor: string): [number, string] {
  if (cursor === '') return [0, ''];
  const i = cursor.indexOf(':');
  const index = Number(cursor.slice(0, i));
  if (i < 0 || !Number.isInteger(index) || index < 0) throw new RangeError(`not a bulk cursor: ${cursor}`);
  return [index, cursor.slice(i + 1)];
}

/** Only the parameters the prepared scan names (better-sqlite3 refuses unknown ones). */
function selectorParams(sel: JobSelector): Named {
  const p: Named = {};
  for (const k of ['tenant_id', 'type', 'origin', 'completed_from', 'completed_before', 'created_from', 'created_before', 'last_status_code', 'error_kind'] as const) {
    if (sel[k] !== undefined) p[k] = sel[k];
  }
  return p;
}
