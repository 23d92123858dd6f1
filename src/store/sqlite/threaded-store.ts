// The SQLite driver on a thread of its own. better-sqlite3 is synchronous, so in the main thread
// every statement and commit holds the event loop that also serves HTTP and makes deliveries. Here
// the connection lives in a worker thread (store-worker.ts) and each Store call is a message: the
// event loop keeps serving while SQLite works on the other core. Callers already batch their
// writes (intake, results), so the hop is paid per batch, not per job. Same contract, same suite.

import type { Worker } from 'node:worker_threads';
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
  ListFilter,
  NewApiKey,
  Page,
  Store,
} from '../store.js';
import { spawnWorker } from '../../spawn-worker.js';
import { keptLanes, type LaneLease, type LaneSync } from '../store.js';
import type { SqliteStoreOptions } from './sqlite-store.js';

interface Reply {
  id: number;
  result?: unknown;
  error?: { name: string; message: string; code?: string };
}

export class StoreThreadError extends Error {
  constructor(
    readonly remoteName: string,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = remoteName;
  }
}

export class ThreadedSqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  readonly laneLeases = false;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private closed = false;

  constructor(opts: SqliteStoreOptions) {
    this.worker = spawnWorker(import.meta.url, 'store-worker', { opts });
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.error) p.reject(r.error.name === 'RangeError' ? new RangeError(r.error.message) : new StoreThreadError(r.error.name, r.error.message, r.error.code));
      else p.resolve(r.result);
    });
    const failAll = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => {
      if (!this.closed) failAll(new Error(`store thread exited with code ${code}`));
    });
  }

  probeWrite(): Promise<void> {
    return this.call('probeWrite');
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args });
    });
  }

  migrate(): Promise<void> {
    return this.call('migrate');
  }
  ping(): Promise<void> {
    return this.call('ping');
  }
  async close(): Promise<void> {
    if (this.closed) return;
    await this.call('close');
    this.closed = true;
    await this.worker.terminate();
  }
  async createJobs(jobs: NewJob[], now: number, committed?: (outcomes: CreateOutcome[]) => void): Promise<CreateOutcome[]> {
    // the store thread answers once the commit is durable: this side cannot tell the two apart
    const outcomes = await this.call<CreateOutcome[]>('createJobs', jobs, now);
    committed?.(outcomes);
    return outcomes;
  }
  getJob(id: string): Promise<Job | null> {
    return this.call('getJob', id);
  }
  listJobs(filter: ListFilter, limit: number, cursor: string | null): Promise<Page<Job>> {
    return this.call('listJobs', filter, limit, cursor);
  }
  listAttempts(jobId: string): Promise<Attempt[]> {
    return this.call('listAttempts', jobId);
  }
  countByStatus(): Promise<Record<JobStatus, number>> {
    return this.call('countByStatus');
  }
  claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedJob[]> {
    return this.call('claimDue', owner, now, leaseMs, limit);
  }
  nextDueAt(): Promise<number | null> {
    return this.call('nextDueAt');
  }
  markRunning(ids: string[], owner: string, now: number): Promise<void> {
    return this.call('markRunning', ids, owner, now);
  }
  completeAttempts(completions: AttemptCompletion[], now: number): Promise<void> {
    return this.call('completeAttempts', completions, now);
  }
  release(ids: string[], owner: string, now: number, dueAt?: number): Promise<void> {
    return this.call('release', ids, owner, now, dueAt);
  }
  renewLeases(owner: string, now: number, leaseMs: number): Promise<number> {
    return this.call('renewLeases', owner, now, leaseMs);
  }
  recoverLeases(now: number, opts?: { all?: boolean }): Promise<number> {
    return this.call('recoverLeases', now, opts);
  }
  promoteDue(now: number): Promise<number> {
    return this.call('promoteDue', now);
  }

  // ── lanes: one process per file, so every destination is its own (see Store.laneLeases) ──

  async syncLanes(_owner: string, _now: number, _leaseMs: number, lanes: LaneSync[]): Promise<{ tenant_id: string; origin: string }[]> {
    return keptLanes(lanes);
  }

  async loadLanes(): Promise<LaneLease[]> {
    return [];
  }
  cancelJob(id: string, now: number): Promise<CommandResult> {
    return this.call('cancelJob', id, now);
  }
  retryJob(id: string, now: number): Promise<CommandResult> {
    return this.call('retryJob', id, now);
  }
  beginBulk(op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number): Promise<BulkBegin> {
    return this.call('beginBulk', op, now);
  }
  bulkStep(step: BulkStep, now: number): Promise<BulkStepResult> {
    return this.call('bulkStep', step, now);
  }
  createApiKey(key: NewApiKey): Promise<boolean> {
    return this.call('createApiKey', key);
  }
  getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return this.call('getApiKey', id);
  }
  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.call('listApiKeys');
  }
  revokeApiKey(id: string, now: number): Promise<ApiKeyRecord | null> {
    return this.call('revokeApiKey', id, now);
  }
  pruneTerminal(before: number, limit: number): Promise<number> {
    return this.call('pruneTerminal', before, limit);
  }
  pruneExpiredKeys(now: number): Promise<number> {
    return this.call('pruneExpiredKeys', now);
  }
  createSchedule(s: NewSchedule): Promise<Schedule> {
    return this.call('createSchedule', s);
  }
  getSchedule(id: string): Promise<Schedule | null> {
    return this.call('getSchedule', id);
  }
  listSchedules(filter: ScheduleFilter, limit: number, cursor: string | null): Promise<Page<Schedule>> {
    return this.call('listSchedules', filter, limit, cursor);
  }
  pauseSchedule(id: string, now: number): Promise<ScheduleCommandResult> {
    return this.call('pauseSchedule', id, now);
  }
  resumeSchedule(id: string, nextTickAt: number | null, now: number): Promise<ScheduleCommandResult> {
    return this.call('resumeSchedule', id, nextTickAt, now);
  }
  deleteSchedule(id: string): Promise<Schedule | null> {
    return this.call('deleteSchedule', id);
  }
  claimDueSchedules(owner: string, now: number, leaseMs: number, limit: number, opts?: { all?: boolean }): Promise<Schedule[]> {
    return this.call('claimDueSchedules', owner, now, leaseMs, limit, opts);
  }
  advanceSchedule(a: ScheduleAdvance, now: number): Promise<boolean> {
    return this.call('advanceSchedule', a, now);
  }
  nextScheduleTickAt(): Promise<number | null> {
    return this.call('nextScheduleTickAt');
  }
}
