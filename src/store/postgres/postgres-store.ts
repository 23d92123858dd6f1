// The PostgreSQL driver of the Store contract (see ../store.ts for what each method promises).
// Several PulseGate instances share one database through it: claims take rows with FOR UPDATE SKIP
// LOCKED under a lease, every state change is one statement guarded on the state and owner it
// expects, and creates resolve concurrent idempotency keys through the keys tables' primary keys.
// The SQL lives beside each concern: intake.ts, dispatch.ts, reads.ts, commands.ts, bulk.ts, keys.ts,
// housekeeping.ts, migrations.ts; this class only holds the pool and routes to them.

import type pg from 'pg';
import type { Attempt } from '../../domain/attempt.js';
import type { NewSchedule, Schedule } from '../../domain/schedule.js';
import type { ScheduleAdvance, ScheduleCommandResult, ScheduleFilter } from '../schedules.js';
import type { CreateOutcome, Job, JobStatus, NewJob } from '../../domain/job.js';
import type {
  ApiKeyRecord,
  AttemptCompletion,
  BulkBegin,
  BulkOperationKey,
  BulkStep,
  BulkStepResult,
  ClaimedJob,
  CommandResult,
  LaneLease,
  LaneSync,
  ListFilter,
  NewApiKey,
  Page,
  Store,
} from '../store.js';
import { keptLanes } from '../store.js';
import * as bulk from './bulk.js';
import * as commands from './commands.js';
import * as dispatch from './dispatch.js';
import * as housekeeping from './housekeeping.js';
import { createJobs } from './intake.js';
import * as keys from './keys.js';
import * as leases from './lanes.js';
import { migratePg } from './migrations.js';
import { DUE_CHANNEL, DueListener, newSender, type NotifyTarget } from './notifier.js';
import { createPool, type PgPoolOptions } from './pool.js';
import * as reads from './reads.js';
import * as schedules from './schedules.js';

export interface PostgresStoreOptions extends PgPoolOptions {
  /** Wake other instances with NOTIFY when this one writes work they could take (PG_NOTIFY). Default true. */
  notify?: boolean;
  /**
   * Hold destinations under a lease, so that the lanes hold across instances (lanes.ts). The service
   * turns it on; off, claims are the plain ones (the store contract's multi-owner tests).
   */
  laneLeases?: boolean;
}

export function openPostgresStore(opts: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(createPool(opts), { connectionString: opts.connectionString, notify: opts.notify ?? true, laneLeases: opts.laneLeases ?? false });
}

export class PostgresStore implements Store {
  readonly driver = 'postgres' as const;
  readonly laneLeases: boolean;
  /** This instance in its notifications, so its own listener skips them. */
  readonly sender = newSender();
  private readonly notify: NotifyTarget | null;
  private closed: Promise<void> | null = null;
  /** Where this instance's last claim shared between tenants stopped (see dispatch.claimDue). */
  private readonly claimTurn = { after: '' };

  /** Takes ownership of the pool: close() ends it. Without a connectionString there are no wake-ups. */
  constructor(
    readonly pool: pg.Pool,
    private readonly opts: { connectionString?: string; notify?: boolean; laneLeases?: boolean } = {},
  ) {
    this.laneLeases = opts.laneLeases ?? false;
    this.notify = opts.notify && opts.connectionString ? { channel: DUE_CHANNEL, sender: this.sender } : null;
  }

  /**
   * Listens for the other instances' wake-ups on a connection of its own (outside the pool) and
   * hands each due time to onDue. Null when wake-ups are off. Stop the listener before close().
   */
  async listenDue(onDue: (dueAt: number) => void, onError?: (err: Error) => void): Promise<DueListener | null> {
    if (!this.notify || !this.opts.connectionString) return null;
    const listener = new DueListener({ connectionString: this.opts.connectionString, sender: this.sender, onDue, onError });
    await listener.start();
    return listener;
  }

  async migrate(): Promise<void> {
    await migratePg(this.pool);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  close(): Promise<void> {
    this.closed ??= this.pool.end();
    return this.closed;
  }

  async createJobs(jobs: NewJob[], now: number, committed?: (outcomes: CreateOutcome[]) => void): Promise<CreateOutcome[]> {
    const outcomes = await createJobs(this.pool, jobs, now, this.notify);
    committed?.(outcomes); // a PostgreSQL commit is durable already
    return outcomes;
  }

  getJob(id: string): Promise<Job | null> {
    return reads.getJob(this.pool, id);
  }

  listJobs(filter: ListFilter, limit: number, cursor: string | null): Promise<Page<Job>> {
    return reads.listJobs(this.pool, filter, limit, cursor);
  }

  listAttempts(jobId: string): Promise<Attempt[]> {
    return reads.listAttempts(this.pool, jobId);
  }

  countByStatus(): Promise<Record<JobStatus, number>> {
    return reads.countByStatus(this.pool);
  }

  claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedJob[]> {
    return dispatch.claimDue(this.pool, owner, now, leaseMs, limit, this.claimTurn, this.laneLeases);
  }

  nextDueAt(owner?: string, now?: number): Promise<number | null> {
    return dispatch.nextDueAt(this.pool, this.laneLeases && owner !== undefined && now !== undefined ? { owner, now } : undefined);
  }

  markRunning(ids: string[], owner: string, now: number): Promise<void> {
    return dispatch.markRunning(this.pool, ids, owner, now);
  }

  completeAttempts(completions: AttemptCompletion[], now: number): Promise<void> {
    return dispatch.completeAttempts(this.pool, completions, now);
  }

  release(ids: string[], owner: string, now: number, dueAt?: number): Promise<void> {
    return dispatch.release(this.pool, ids, owner, now, dueAt, this.notify);
  }

  renewLeases(owner: string, now: number, leaseMs: number): Promise<number> {
    return dispatch.renewLeases(this.pool, owner, now, leaseMs);
  }

  recoverLeases(now: number, opts?: { all?: boolean }): Promise<number> {
    return dispatch.recoverLeases(this.pool, now, opts);
  }

  promoteDue(now: number): Promise<number> {
    return dispatch.promoteDue(this.pool, now);
  }

  syncLanes(owner: string, now: number, leaseMs: number, lanes: LaneSync[]): Promise<{ tenant_id: string; origin: string }[]> {
    if (!this.laneLeases) return Promise.resolve(keptLanes(lanes));
    return leases.syncLanes(this.pool, owner, now, leaseMs, lanes, this.notify);
  }

  loadLanes(keys: { tenant_id: string; origin: string }[]): Promise<LaneLease[]> {
    return this.laneLeases ? leases.loadLanes(this.pool, keys) : Promise.resolve([]);
  }

  cancelJob(id: string, now: number): Promise<CommandResult> {
    return commands.cancelJob(this.pool, id, now);
  }

  retryJob(id: string, now: number): Promise<CommandResult> {
    return commands.retryJob(this.pool, id, now);
  }

  beginBulk(op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number): Promise<BulkBegin> {
    return bulk.beginBulk(this.pool, op, now);
  }

  bulkStep(step: BulkStep, now: number): Promise<BulkStepResult> {
    return bulk.bulkStep(this.pool, step, now);
  }

  createApiKey(key: NewApiKey): Promise<boolean> {
    return keys.createApiKey(this.pool, key);
  }

  getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return keys.getApiKey(this.pool, id);
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return keys.listApiKeys(this.pool);
  }

  revokeApiKey(id: string, now: number): Promise<ApiKeyRecord | null> {
    return keys.revokeApiKey(this.pool, id, now);
  }

  pruneTerminal(before: number, limit: number): Promise<number> {
    return housekeeping.pruneTerminal(this.pool, before, limit);
  }

  pruneExpiredKeys(now: number): Promise<number> {
    return housekeeping.pruneExpiredKeys(this.pool, now);
  }

  createSchedule(s: NewSchedule): Promise<Schedule> {
    return schedules.createSchedule(this.pool, s);
  }

  getSchedule(id: string): Promise<Schedule | null> {
    return schedules.getSchedule(this.pool, id);
  }

  listSchedules(filter: ScheduleFilter, limit: number, cursor: string | null): Promise<Page<Schedule>> {
    return schedules.listSchedules(this.pool, filter, limit, cursor);
  }

  pauseSchedule(id: string, now: number): Promise<ScheduleCommandResult> {
    return schedules.pauseSchedule(this.pool, id, now);
  }

  resumeSchedule(id: string, nextTickAt: number | null, now: number): Promise<ScheduleCommandResult> {
    return schedules.resumeSchedule(this.pool, id, nextTickAt, now);
  }

  deleteSchedule(id: string): Promise<Schedule | null> {
    return schedules.deleteSchedule(this.pool, id);
  }

  claimDueSchedules(owner: string, now: number, leaseMs: number, limit: number, opts?: { all?: boolean }): Promise<Schedule[]> {
    return schedules.claimDueSchedules(this.pool, owner, now, leaseMs, limit, opts?.all === true);
  }

  advanceSchedule(a: ScheduleAdvance, now: number): Promise<boolean> {
    return schedules.advanceSchedule(this.pool, a, now);
  }

  nextScheduleTickAt(): Promise<number | null> {
    return schedules.nextScheduleTickAt(this.pool);
  }
}
