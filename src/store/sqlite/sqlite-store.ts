// The SQLite driver of the Store contract (see ../store.ts for what each method promises).
// better-sqlite3 is synchronous: every method does its work in one statement or one transaction and
// returns a settled Promise, so callers are written the same way for the future PostgreSQL driver.
// Write transactions are BEGIN IMMEDIATE: a deferred one that reads first could fail with
// SQLITE_BUSY_SNAPSHOT (no busy wait) when another process writes between its read and its write.

import Database from 'better-sqlite3';
import type { Clock } from '../../clock.js';
import type { Attempt } from '../../domain/attempt.js';
import type { NewSchedule, Schedule } from '../../domain/schedule.js';
import type { ScheduleAdvance, ScheduleCommandResult, ScheduleFilter } from '../schedules.js';
import { JOB_STATUSES, type CreateOutcome, type Job, type JobStatus, type NewJob } from '../../domain/job.js';
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
import { realDueAt, type OrderingKey } from '../../domain/ordering.js';
import { keptLanes, type LaneLease, type LaneSync } from '../store.js';
import { SqliteBulk } from './bulk.js';
import { OrderingLines } from './ordering.js';
import { SqliteSchedules } from './schedules.js';
import { migrate, NOT_SUCCESS } from './migrations.js';
import { Checkpointer } from './checkpointer.js';
import { LockedCheckpointer } from './locked-checkpointer.js';
import { WalSync } from './wal-sync.js';
import type { WriteLock } from './write-lock.js';
import {
  attemptInsertParams,
  jobInsertParams,
  newJobToJob,
  rowToAttempt,
  rowToClaimedJob,
  rowToJob,
  type AttemptRow,
  type JobRow,
} from './rows.js';

export interface SqliteStoreOptions {
  path: string;
  /** FULL survives power loss (an fsync per commit); NORMAL survives a process crash only. */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a statement waits for another connection's write lock before failing. */
  busyTimeoutMs?: number;
  /**
   * The WAL is started over once it passes half of this, and cut back to it when it does
   * (journal_size_limit). Default 64 MiB.
   */
  walLimitBytes?: number;
  /** How often the WAL is checkpointed. Default 250 ms. */
  checkpointIntervalMs?: number;
  /**
   * Who checkpoints the WAL. 'worker' (default): a worker thread of its own (Checkpointer), from
   * migrate() on. With a second writing connection in this process (ENGINE_THREAD): this connection,
   * finishing under the write lock they share (`{ lock, clock }`, LockedCheckpointer: the engine
   * thread's), or the other one ('elsewhere': the main thread's).
   */
  checkpoints?: 'worker' | 'elsewhere' | { lock: WriteLock; clock: Clock };
  /** The connection's page cache, in MB (SQLITE_CACHE_MB). Default 4. */
  cacheSizeMb?: number;
}

const DEFAULT_CACHE_MB = 4;

const DEFAULT_WAL_LIMIT_BYTES = 64 * 1024 * 1024;

export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(opts);
}

// Repeated verbatim where a partial index must be usable (SQLite matches index predicates by text).
// Those queries name their index (INDEXED BY): without statistics the planner prefers jobs_status
// for `status IN (...)` and then sorts every waiting job; INDEXED BY also fails loudly at prepare
// time if a predicate ever drifts from its index.
const WAITING = `status IN ('scheduled','queued','retrying')`;

/** The claim: due waiting jobs no one holds, oldest due first, through `index`, narrowed by `where`. */
function claimSql(index: string, where: string): string {
  return `
    UPDATE jobs SET
      lease_owner = @owner,
      lease_expires_at = @lease_expires_at,
      status = CASE status WHEN 'scheduled' THEN 'queued' ELSE status END,
      updated_at = CASE status WHEN 'scheduled' THEN @now ELSE updated_at END
    WHERE id IN (
      SELECT id FROM jobs INDEXED BY ${index}
      WHERE ${WAITING} AND lease_owner IS NULL ${where} AND due_at <= @now
      ORDER BY due_at, id
      LIMIT @limit)
    RETURNING *`;
}
/** A fair claim visits at most this many tenants (one index seek each) ... */
const FAIR_TENANTS_VISITED = 256;
/** ... and shares a claim between at most this many tenants with due jobs; the next claim goes on from there. */
const FAIR_TENANTS_CLAIMED = 64;
/**
 * While the tenant probe finds fewer than two tenants with due jobs, claims skip it for this long
 * (by the caller's clock) and take the oldest due of anyone: a second tenant's backlog in the store
 * gets its share this much later at most (its jobs created by this process join their lanes at
 * once). It spares the probe's index seeks on every claim of a one-tenant deployment.
 */
const SOLO_RECHECK_MS = 100;
const TERMINAL = `status IN ('success','failed','cancelled')`;

// A result applies while its dispatcher still holds the job and nobody ended it meanwhile. The
// job need not be marked running: the engine marks only attempts that outlast a short grace.
const HELD = `(status IN ('scheduled','queued','retrying','running') AND lease_owner = @owner)`;
// A running job given back without an attempt result: retrying if it has made attempts, else queued.
const GIVEN_BACK_STATUS = `CASE WHEN status = 'running' THEN (CASE WHEN attempts > 0 THEN 'retrying' ELSE 'queued' END) ELSE status END`;

const MAX_LIST_LIMIT = 1000;
const API_KEY_SELECT = 'SELECT id, tenant_id, key_hash, label, created_at, revoked_at FROM api_keys';

type Stmt<P extends unknown[] | object = unknown[], R = unknown> = Database.Statement<P, R>;
type Named = Record<string, unknown>;

interface Statements {
  insertJob: Stmt<Named>;
  getJob: Stmt<[string], JobRow>;
  findIdempotency: Stmt<[string, string, number], JobRow & { k_request_hash: string | null }>;
  findDedupe: Stmt<[string, string, number], JobRow>;
  putIdempotency: Stmt<Named>;
  putDedupe: Stmt<Named>;
  listAttempts: Stmt<[string], AttemptRow>;
  countByStatus: Stmt<[], { status: JobStatus; n: number }>;
  claim: Stmt<Named, JobRow>;
  claimTenant: Stmt<Named, JobRow>;
  nextWaitingTenant: Stmt<Named, { tenant_id: string; due_at: number }>;
  nextDueAt: Stmt<[], number>;
  markRunning: Stmt<Named>;
  insertAttempt: Stmt<Named>;
  completeHeld: Stmt<Named>;
  completeUnheld: Stmt<Named>;
  release: Stmt<Named>;
  renewLeases: Stmt<Named>;
  recoverExpired: Stmt<Named>;
  recoverAll: Stmt<Named>;
  promoteDue: Stmt<Named>;
  cancel: Stmt<Named, JobRow>;
  retry: Stmt<Named, JobRow>;
  pruneTerminal: Stmt<Named>;
  pruneIdempotency: Stmt<[number]>;
  pruneDedupe: Stmt<[number]>;
  insertApiKey: Stmt<Named>;
  getApiKey: Stmt<[string], ApiKeyRecord>;
  listApiKeys: Stmt<[], ApiKeyRecord>;
  revokeApiKey: Stmt<Named, ApiKeyRecord>;
}

export class SqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  readonly laneLeases = false;
  private readonly db: Database.Database;
  private stmts: Statements | null = null;
  private pingStmt: Stmt | null = null;
  private readonly listStmts = new Map<string, Stmt<Named, JobRow>>();
  private bulkCommands: SqliteBulk | null = null;
  private orderingLines: OrderingLines | null = null;
  private scheduleStmts: SqliteSchedules | null = null;

  private readonly createTx: (jobs: NewJob[], now: number) => CreateOutcome[];
  private readonly createManyTx: (calls: { jobs: NewJob[]; now: number }[]) => CreateOutcome[][];
  private createCommitCount = 0;
  /** createJobs calls waiting for the running fdatasync to end, to be committed together (see createJobs). */
  private deferredCreates: {
    jobs: NewJob[];
    now: number;
    resolve: (o: CreateOutcome[]) => void;
    reject: (e: unknown) => void;
    committed: ((o: CreateOutcome[]) => void) | undefined;
  }[] = [];
  private readonly completeTx: (completions: AttemptCompletion[], now: number) => void;
  private readonly markRunningTx: (ids: string[], owner: string, now: number) => void;
  private readonly releaseTx: (ids: string[], owner: string, now: number, dueAt: number | null) => void;
  private readonly claimFairTx: (params: Named, tenants: string[]) => JobRow[];
  /** The tenant the last fair claim ended with; the next one starts after it. */
  private tenantCursor = '';
  /** Until then (clock time) the last probe's answer, fewer than two tenants, still stands. */
  private soloUntil = -Infinity;
  private readonly commandTx: (stmt: Stmt<Named, JobRow>, id: string, now: number, then?: (row: JobRow) => JobRow) => CommandResult;
  private readonly pruneKeysTx: (now: number) => number;
  private readonly walSync: WalSync | null;
  private checkpointer: Checkpointer | LockedCheckpointer | null = null;
  private readonly checkpoints: NonNullable<SqliteStoreOptions['checkpoints']>;
  private readonly checkpointIntervalMs: number;
  /** Frames in the WAL past which the store finishes a checkpoint itself, so the log starts over. */
  private readonly restartFrames: number;
  private readonly path: string;
  private readonly inMemory: boolean;

  constructor(opts: SqliteStoreOptions) {
    // `timeout` is SQLite's busy_timeout.
    this.db = new Database(opts.path, { timeout: opts.busyTimeoutMs ?? 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    // Every transaction commits at NORMAL: no fsync on the event loop. What a caller is told is
    // done (a created job, a cancel, a retry, an API key) then waits for an fdatasync of the WAL in
    // the thread pool (WalSync) when the configured level is FULL, so it survives power loss. The
    // engine's own bookkeeping (claims, attempt starts, results, lease renewals) does not wait: it
    // reaches disk with the next sync or checkpoint, and losing its last moments to a power cut only
    // means a job is delivered again (at-least-once), never lost.
    this.path = opts.path;
    this.inMemory = opts.path === ':memory:' || opts.path === '';
    this.walSync = opts.synchronous === 'NORMAL' || this.inMemory ? null : new WalSync(`${opts.path}-wal`);
    this.db.pragma('synchronous = NORMAL');
    // checkpoints run in a worker thread (see Checkpointer), not inside this connection's commits
    this.db.pragma('wal_autocheckpoint = 0');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection; the operating system's
    // file cache sits under it anyway, and this one counts in the process's RSS
    this.db.pragma(`cache_size = ${-Math.max(1, Math.round((opts.cacheSizeMb ?? DEFAULT_CACHE_MB) * 1024))}`);
    const walLimit = opts.walLimitBytes ?? DEFAULT_WAL_LIMIT_BYTES;
    this.db.pragma(`journal_size_limit = ${Math.floor(walLimit)}`);
    const pageSize = Number(this.db.pragma('page_size', { simple: true }));
    this.restartFrames = Math.max(1, Math.floor(walLimit / 2 / (pageSize + 24)));
    this.checkpointIntervalMs = opts.checkpointIntervalMs ?? 250;
    this.checkpoints = opts.checkpoints ?? 'worker';
    if (typeof this.checkpoints === 'object' && !this.inMemory) {
      this.checkpointer = new LockedCheckpointer({
        db: this.db,
        path: this.path,
        lock: this.checkpoints.lock,
        clock: this.checkpoints.clock,
        intervalMs: this.checkpointIntervalMs,
        restartFrames: this.restartFrames,
      });
    }

    const immediate = <A extends unknown[], R>(fn: (...args: A) => R): ((...args: A) => R) => {
      const tx = this.db.transaction(fn);
      return (...args: A) => tx.immediate(...args) as R;
    };
    this.createTx = immediate((jobs: NewJob[], now: number) => this.createInTx(jobs, now));
    this.createManyTx = immediate((calls: { jobs: NewJob[]; now: number }[]) => calls.map((c) => this.createInTx(c.jobs, c.now)));
    this.completeTx = immediate((completions: AttemptCompletion[], now: number) => {
      const s = this.q;
      let ended: OrderingKey[] | null = null;
      for (const c of completions) {
        const params = completionParams(c, now);
        // one statement without a guard per column when the job is still held (nearly always)
        if (s.completeHeld.run(params).changes === 0 && s.completeUnheld.run(params).changes === 0) continue;
        s.insertAttempt.run(attemptInsertParams(c.attempt));
        if (c.ordering && c.next.status !== 'retrying') (ended ??= []).push(c.ordering);
      }
      if (ended) this.lines.settle(ended, now);
    });
    this.markRunningTx = immediate((ids: string[], owner: string, now: number) => {
      const s = this.q;
      for (const id of ids) s.markRunning.run({ id, owner, now });
    });
    this.releaseTx = immediate((ids: string[], owner: string, now: number, dueAt: number | null) => {
      const s = this.q;
      for (const id of ids) s.release.run({ id, owner, now, due_at: dueAt });
    });
    // A share of the claim per tenant with due jobs, then the oldest due of anyone for what is left.
    this.claimFairTx = immediate((params: Named, tenants: string[]): JobRow[] => {
      const s = this.q;
      const limit = params.limit as number;
      const share = Math.max(1, Math.ceil(limit / tenants.length));
      const rows: JobRow[] = [];
      for (const tenant of tenants) {
        if (rows.length >= limit) break;
        rows.push(...s.claimTenant.all({ ...params, tenant, limit: Math.min(share, limit - rows.length) }));
        this.tenantCursor = tenant;
      }
      if (rows.length < limit) rows.push(...s.claim.all({ ...params, limit: limit - rows.length }));
      return rows;
    });
    this.commandTx = immediate((stmt: Stmt<Named, JobRow>, id: string, now: number, then?: (row: JobRow) => JobRow): CommandResult => {
      const changed = stmt.get({ id, now });
      if (changed) return { kind: 'ok', job: rowToJob(then && changed.ordering_key !== null ? then(changed) : changed) };
      const current = this.q.getJob.get(id);
      return current ? { kind: 'conflict', job: rowToJob(current) } : { kind: 'not_found' };
    });
    this.pruneKeysTx = immediate((now: number) => {
      const s = this.q;
      return s.pruneIdempotency.run(now).changes + s.pruneDedupe.run(now).changes + this.bulk.pruneExpired(now);
    });
  }

  async migrate(): Promise<void> {
    migrate(this.db);
    if (!this.checkpointer && !this.inMemory && this.checkpoints === 'worker') {
      this.checkpointer = new Checkpointer(this.path, {
        intervalMs: this.checkpointIntervalMs,
        onCheckpoint: (logFrames) => this.finishCheckpoint(logFrames),
      });
    }
  }

  /**
   * The worker's PASSIVE checkpoint copies the frames that existed when it began; under a steady
   * write load new ones keep arriving, the log is never wholly copied, and SQLite only starts the
   * WAL over when it is. Once the log is long, this connection copies the few frames that remain
   * (those written while the worker copied), between two of its own transactions (it is the only
   * writer), so its next commit starts the WAL over, cutting the file back to journal_size_limit.
   */
  private finishCheckpoint(logFrames: number): void {
    // (the worker's own "checkpointed" count only says it copied what it saw when it began)
    if (!this.db.open || this.db.inTransaction || logFrames < this.restartFrames) return;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // busy or closing: the next report tries again
    }
  }

  /**
   * Allocates pages as a write would, in a transaction that is rolled back: a table and a row one
   * page larger than the free pages the file has (up to 256 of them: with more free pages there is
   * room for writes anyway), so the file must grow. Fails with SQLITE_FULL while it may not grow
   * (max_page_count, quota),
   * SQLITE_BUSY while another connection holds the lock past busy_timeout, SQLITE_READONLY or an
   * I/O error while the file cannot be written. It does not write the WAL, so a disk that is full
   * only for the WAL shows in the next real write instead.
   */
  async probeWrite(): Promise<void> {
    const pageSize = Number(this.db.pragma('page_size', { simple: true }));
    const free = Number(this.db.pragma('freelist_count', { simple: true }));
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.exec('CREATE TABLE pulsegate_write_probe (b BLOB)');
      this.db.prepare('INSERT INTO pulsegate_write_probe (b) VALUES (zeroblob(?))').run(pageSize * (Math.min(free, 256) + 2));
    } finally {
      this.db.exec('ROLLBACK');
    }
  }

  /**
   * Caps the database at `pages` pages (PRAGMA max_page_count, on this connection only; SQLite
   * never sets it below the current size) and returns the cap now in force. A write that needs more
   * fails with SQLITE_FULL, as on a full disk: the tests use it to make SQLite itself report one,
   * and an operator could use it as a quota. Not part of the Store contract.
   */
  setMaxPageCount(pages: number): number {
    return Number(this.db.pragma(`max_page_count = ${Math.max(1, Math.floor(pages))}`, { simple: true }));
  }

  /** Pages in the database file now (PRAGMA page_count). */
  pageCount(): number {
    return Number(this.db.pragma('page_count', { simple: true }));
  }

  async ping(): Promise<void> {
    // Its own statement: it must answer before migrate() too, when the others cannot be prepared.
    this.pingStmt ??= this.db.prepare('SELECT 1');
    this.pingStmt.get();
  }

  /** This connection's settings, for diagnostics and tests. synchronous: 1 NORMAL, 2 FULL. */
  settings(): {
    journal_mode: string;
    synchronous: number;
    durable_synchronous: number;
    foreign_keys: number;
    busy_timeout: number;
    cache_size: number;
  } {
    const get = (name: string) => this.db.pragma(name, { simple: true });
    return {
      journal_mode: String(get('journal_mode')),
      // the engine's level; durable_synchronous is what creates, commands and key changes commit at
      synchronous: Number(get('synchronous')),
      durable_synchronous: this.walSync ? 2 : 1,
      foreign_keys: Number(get('foreign_keys')),
      busy_timeout: Number(get('busy_timeout')),
      cache_size: Number(get('cache_size')),
    };
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    await this.walSync?.close();
    await this.checkpointer?.stop();
    this.checkpointer = null;
    this.db.close();
  }

  /** Waits until every commit made so far is on stable storage (when the level is FULL). */
  private async durable<R>(result: R): Promise<R> {
    if (this.walSync) await this.walSync.sync();
    return result;
  }

  /** Transactions createJobs committed so far (for diagnostics and tests). */
  get createCommits(): number {
    return this.createCommitCount;
  }

  /** fdatasyncs of the WAL so far (0 at NORMAL). */
  get walSyncs(): number {
    return this.walSync?.syncs ?? 0;
  }

  // ── intake ───────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates are acknowledged after an fdatasync of the WAL (FULL). One that arrives while an
   * fdatasync runs could not be acknowledged before the next one anyway, so it is not committed at
   * once: every create that arrives meanwhile is committed in one transaction when the running
   * fdatasync ends, right before the next one starts. The same latency, and one commit for them all
   * where each turn of the event loop made its own. Only where this connection is the file's one
   * writer: another connection's writes wait for the write lock, which this deferred commit, run
   * later than the call, would not hold (ENGINE_THREAD; see write-lock.ts).
   */
  async createJobs(jobs: NewJob[], now: number, committed?: (outcomes: CreateOutcome[]) => void): Promise<CreateOutcome[]> {
    if (jobs.length === 0) return [];
    if (!this.walSync?.busy || this.checkpoints !== 'worker') {
      const outcomes = this.createTx(jobs, now);
      this.createCommitCount++;
      // after this call has returned (and let go of the write lock it may run under), before the fsync
      if (committed) queueMicrotask(() => committed(outcomes));
      return this.durable(outcomes);
    }
    const walSync = this.walSync;
    return new Promise<CreateOutcome[]>((resolve, reject) => {
      if (this.deferredCreates.push({ jobs, now, resolve, reject, committed }) > 1) return;
      let calls: typeof this.deferredCreates = [];
      let outcomes: CreateOutcome[][] = [];
      let failure: { error: unknown } | null = null;
      const synced = walSync.afterRunning(() => {
        calls = this.deferredCreates;
        this.deferredCreates = [];
        try {
          outcomes = this.createManyTx(calls);
          this.createCommitCount++;
          const done = outcomes;
          queueMicrotask(() => calls.forEach((c, i) => c.committed?.(done[i] as CreateOutcome[])));
        } catch (error) {
          failure = { error };
        }
      });
      synced.then(
        () => calls.forEach((c, i) => (failure ? c.reject(failure.error) : c.resolve(outcomes[i] as CreateOutcome[]))),
        (error: unknown) => calls.forEach((c) => c.reject(failure ? failure.error : error)),
      );
    });
  }

  private createInTx(jobs: NewJob[], now: number): CreateOutcome[] {
    const s = this.q;
    const out: CreateOutcome[] = [];
    for (const j of jobs) {
      if (j.idempotency_key !== null) {
        const prior = s.findIdempotency.get(j.tenant_id, j.idempotency_key, now);
        if (prior) {
          out.push(
            prior.k_request_hash === j.idempotency_hash
              ? { kind: 'idempotent_replay', job: rowToJob(prior) }
              : { kind: 'idempotency_conflict', job_id: prior.id },
          );
          continue;
        }
      }
      if (j.dedupe_hash !== null) {
        const original = s.findDedupe.get(j.tenant_id, j.dedupe_hash, now);
        if (original) {
          if (j.idempotency_key !== null) this.putIdempotency(j, original.id);
          out.push({ kind: 'deduplicated', job: rowToJob(original) });
          continue;
        }
      }
      const status: JobStatus = j.run_at > now ? 'scheduled' : 'queued';
      const place = j.ordering_key ? this.lines.place({ tenant_id: j.tenant_id, key: j.ordering_key }) : null;
      s.insertJob.run(jobInsertParams(j, status, now, place));
      if (j.idempotency_key !== null) this.putIdempotency(j, j.id);
      if (j.dedupe_hash !== null) {
        s.putDedupe.run({ tenant_id: j.tenant_id, hash: j.dedupe_hash, job_id: j.id, expires_at: j.dedupe_expires_at });
      }
      out.push({ kind: 'created', job: newJobToJob(j, status, now, place) });
    }
    return out;
  }

  private putIdempotency(j: NewJob, jobId: string): void {
    this.q.putIdempotency.run({
      tenant_id: j.tenant_id,
      key: j.idempotency_key,
      request_hash: j.idempotency_hash,
      job_id: jobId,
      expires_at: j.idempotency_expires_at,
    });
  }

  // ── reads ────────────────────────────────────────────────────────────────────────────────────

  async getJob(id: string): Promise<Job | null> {
    const row = this.q.getJob.get(id);
    return row ? rowToJob(row) : null;
  }

  async listJobs(filter: ListFilter, limit: number, cursor: string | null): Promise<Page<Job>> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new RangeError(`limit must be an integer in 1..${MAX_LIST_LIMIT}, got ${limit}`);
    }
    const params: Named = { limit: limit + 1 };
    const where: string[] = [];
    let key = '';
    if (filter.tenant_id !== undefined) {
      where.push('tenant_id = @tenant_id');
      params.tenant_id = filter.tenant_id;
      key += 't';
    }
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = filter.status;
      // successes are not in the status indexes (migration 9); the others name their predicate
      if (filter.status !== 'success') where.push(NOT_SUCCESS);
      key += filter.status === 'success' ? 'S' : 's';
    }
    if (filter.type !== undefined) {
      where.push('type = @type');
      params.type = filter.type;
      key += 'y';
    }
    if (filter.ordering_key !== undefined) {
      where.push('ordering_key = @ordering_key');
      params.ordering_key = filter.ordering_key;
      key += 'o';
    }
    // The cursor is the last id of the previous page; ids sort by creation time, so any string is
    // a sound bound and jobs created while walking (larger ids) never reappear.
    if (cursor !== null) {
      where.push('id < @cursor');
      params.cursor = cursor;
      key += 'c';
    }
    let stmt = this.listStmts.get(key);
    if (!stmt) {
      const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      stmt = this.db.prepare<Named, JobRow>(sql);
      this.listStmts.set(key, stmt);
    }
    const rows = stmt.all(params);
    const more = rows.length > limit;
    if (more) rows.pop();
    const last = rows[rows.length - 1];
    return { data: rows.map(rowToJob), next_cursor: more && last ? last.id : null };
  }

  async listAttempts(jobId: string): Promise<Attempt[]> {
    return this.q.listAttempts.all(jobId).map(rowToAttempt);
  }

  async countByStatus(): Promise<Record<JobStatus, number>> {
    const counts = Object.fromEntries(JOB_STATUSES.map((st) => [st, 0])) as Record<JobStatus, number>;
    for (const { status, n } of this.q.countByStatus.all()) counts[status] = n;
    return counts;
  }

  // ── dispatch ─────────────────────────────────────────────────────────────────────────────────

  async claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedJob[]> {
    if (limit < 1) return [];
    const params = { owner, now, lease_expires_at: now + leaseMs, limit };
    let tenants: string[] = [];
    if (now >= this.soloUntil) {
      tenants = this.dueTenants(now);
      if (tenants.length < 2) this.soloUntil = now + SOLO_RECHECK_MS;
    }
    const rows = tenants.length < 2 ? this.q.claim.all(params) : this.claimFairTx(params, tenants);
    // RETURNING order is unspecified.
    rows.sort((a, b) => a.due_at - b.due_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return rows.map(rowToClaimedJob);
  }

  /**
   * Tenants with due jobs, in turn from where the last fair claim stopped (one index seek each, at
   * most FAIR_TENANTS_VISITED visited), so a tenant with a large backlog cannot crowd out the others.
   */
  private dueTenants(now: number): string[] {
    const found: string[] = [];
    let after = this.tenantCursor;
    let wrapped = false;
    for (let visited = 0; visited < FAIR_TENANTS_VISITED && found.length < FAIR_TENANTS_CLAIMED; visited++) {
      const next = this.q.nextWaitingTenant.get({ after });
      if (!next) {
        if (wrapped || this.tenantCursor === '') break;
        wrapped = true;
        after = '';
        continue;
      }
      if (wrapped && next.tenant_id > this.tenantCursor) break;
      if (next.due_at <= now) found.push(next.tenant_id);
      after = next.tenant_id;
    }
    return found;
  }

  async nextDueAt(): Promise<number | null> {
    return realDueAt(this.q.nextDueAt.get());
  }

  async markRunning(ids: string[], owner: string, now: number): Promise<void> {
    if (ids.length > 0) this.markRunningTx(ids, owner, now);
  }

  async completeAttempts(completions: AttemptCompletion[], now: number): Promise<void> {
    if (completions.length > 0) this.completeTx(completions, now);
  }

  async release(ids: string[], owner: string, now: number, dueAt?: number): Promise<void> {
    if (ids.length > 0) this.releaseTx(ids, owner, now, dueAt ?? null);
  }

  async renewLeases(owner: string, now: number, leaseMs: number): Promise<number> {
    return this.q.renewLeases.run({ owner, lease_expires_at: now + leaseMs }).changes;
  }

  async recoverLeases(now: number, opts?: { all?: boolean }): Promise<number> {
    const stmt = opts?.all ? this.q.recoverAll : this.q.recoverExpired;
    return stmt.run({ now }).changes;
  }

  async promoteDue(now: number): Promise<number> {
    return this.q.promoteDue.run({ now }).changes;
  }

  // ── lanes: one process per file, so every destination is its own (see Store.laneLeases) ──

  async syncLanes(_owner: string, _now: number, _leaseMs: number, lanes: LaneSync[]): Promise<{ tenant_id: string; origin: string }[]> {
    return keptLanes(lanes);
  }

  async loadLanes(): Promise<LaneLease[]> {
    return [];
  }

  // ── commands ─────────────────────────────────────────────────────────────────────────────────

  async cancelJob(id: string, now: number): Promise<CommandResult> {
    return this.durable(
      this.commandTx(this.q.cancel, id, now, (row) => {
        this.lines.settle([{ tenant_id: row.tenant_id, key: row.ordering_key as string }], now);
        return row;
      }),
    );
  }

  async retryJob(id: string, now: number): Promise<CommandResult> {
    return this.durable(
      this.commandTx(this.q.retry, id, now, (row) => {
        this.lines.requeue(row.id, { tenant_id: row.tenant_id, key: row.ordering_key as string });
        return this.q.getJob.get(row.id) ?? row;
      }),
    );
  }

  // ── bulk commands ────────────────────────────────────────────────────────────────────────────

  async beginBulk(op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number): Promise<BulkBegin> {
    return this.durable(this.bulk.begin(op, now));
  }

  async bulkStep(step: BulkStep, now: number): Promise<BulkStepResult> {
    const result = this.bulk.step(step, now);
    return step.apply ? this.durable(result) : result;
  }

  /** Prepared on first use, like the statements (after migrate). */
  private get bulk(): SqliteBulk {
    this.bulkCommands ??= new SqliteBulk(this.db, this.lines);
    return this.bulkCommands;
  }

  /** Ordering-key lines (ordering.ts), prepared on first use like the statements. */
  private get lines(): OrderingLines {
    this.orderingLines ??= new OrderingLines(this.db);
    return this.orderingLines;
  }

  // ── schedules (../schedules.ts) ──────────────────────────────────────────────────────────────

  /** Prepared on first use, like the statements (after migrate). */
  private get schedules(): SqliteSchedules {
    this.scheduleStmts ??= new SqliteSchedules(this.db);
    return this.scheduleStmts;
  }

  async createSchedule(s: NewSchedule): Promise<Schedule> {
    return this.durable(this.schedules.create(s));
  }

  async getSchedule(id: string): Promise<Schedule | null> {
    return this.schedules.get(id);
  }

  async listSchedules(filter: ScheduleFilter, limit: number, cursor: string | null): Promise<Page<Schedule>> {
    return this.schedules.list(filter, limit, cursor);
  }

  async pauseSchedule(id: string, now: number): Promise<ScheduleCommandResult> {
    return this.durable(this.schedules.pause(id, now));
  }

  async resumeSchedule(id: string, nextTickAt: number | null, now: number): Promise<ScheduleCommandResult> {
    return this.durable(this.schedules.resume(id, nextTickAt, now));
  }

  async deleteSchedule(id: string): Promise<Schedule | null> {
    return this.durable(this.schedules.remove(id));
  }

  async claimDueSchedules(owner: string, now: number, leaseMs: number, limit: number, opts?: { all?: boolean }): Promise<Schedule[]> {
    return this.schedules.claim(owner, now, leaseMs, limit, opts?.all === true);
  }

  async advanceSchedule(a: ScheduleAdvance, now: number): Promise<boolean> {
    return this.durable(this.schedules.advance(a, now));
  }

  async nextScheduleTickAt(): Promise<number | null> {
    return this.schedules.nextTickAt();
  }

  // ── API keys ─────────────────────────────────────────────────────────────────────────────────

  async createApiKey(key: NewApiKey): Promise<boolean> {
    return this.durable(this.q.insertApiKey.run({ ...key }).changes === 1);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | null> {
    return this.q.getApiKey.get(id) ?? null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.q.listApiKeys.all();
  }

  async revokeApiKey(id: string, now: number): Promise<ApiKeyRecord | null> {
    return this.durable(this.q.revokeApiKey.get({ id, now }) ?? null);
  }

  // ── housekeeping ─────────────────────────────────────────────────────────────────────────────

  async pruneTerminal(before: number, limit: number): Promise<number> {
    if (limit < 1) return 0;
    return this.q.pruneTerminal.run({ before, limit }).changes;
  }

  async pruneExpiredKeys(now: number): Promise<number> {
    return this.pruneKeysTx(now);
  }

  // ── statements ───────────────────────────────────────────────────────────────────────────────

  /** Prepared once, on first use (after migrate: preparing needs the tables). */
  private get q(): Statements {
    this.stmts ??= this.prepareAll();
    return this.stmts;
  }

  private prepareAll(): Statements {
    const db = this.db;
    return {
      insertJob: db.prepare<Named>(`
        INSERT INTO jobs (
          id, tenant_id, type, status, payload_json,
          dest_url, dest_method, dest_timeout_ms, dest_headers_json,
          retry_max_attempts, retry_base_delay_ms, retry_max_delay_ms, rate_limit_rps, rate_limit_burst, rate_limit_max_in_flight,
          run_at, due_at, lease_owner, lease_expires_at, idempotency_key, dedupe_key, ordering_key, ordering_seq,
          created_at, updated_at, traceparent, tracestate
        ) VALUES (
          @id, @tenant_id, @type, @status, @payload_json,
          @dest_url, @dest_method, @dest_timeout_ms, @dest_headers_json,
          @retry_max_attempts, @retry_base_delay_ms, @retry_max_delay_ms, @rate_limit_rps, @rate_limit_burst, @rate_limit_max_in_flight,
          @run_at, @due_at, @lease_owner, @lease_expires_at, @idempotency_key, @dedupe_key, @ordering_key, @ordering_seq,
          @created_at, @updated_at, @traceparent, @tracestate
        )`),
      getJob: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
      // A record whose job was pruned counts as absent (the join drops it) and is overwritten.
      findIdempotency: db.prepare<[string, string, number], JobRow & { k_request_hash: string | null }>(`
        SELECT j.*, k.request_hash AS k_request_hash
        FROM idempotency_keys k JOIN jobs j ON j.id = k.job_id
        WHERE k.tenant_id = ? AND k.key = ? AND (k.expires_at IS NULL OR k.expires_at > ?)`),
      findDedupe: db.prepare<[string, string, number], JobRow>(`
        SELECT j.*
        FROM dedupe_keys d JOIN jobs j ON j.id = d.job_id
        WHERE d.tenant_id = ? AND d.hash = ? AND (d.expires_at IS NULL OR d.expires_at > ?)`),
      putIdempotency: db.prepare<Named>(`
        INSERT INTO idempotency_keys (tenant_id, key, request_hash, job_id, expires_at)
        VALUES (@tenant_id, @key, @request_hash, @job_id, @expires_at)
        ON CONFLICT (tenant_id, key) DO UPDATE SET
          request_hash = excluded.request_hash, job_id = excluded.job_id, expires_at = excluded.expires_at`),
      putDedupe: db.prepare<Named>(`
        INSERT INTO dedupe_keys (tenant_id, hash, job_id, expires_at)
        VALUES (@tenant_id, @hash, @job_id, @expires_at)
        ON CONFLICT (tenant_id, hash) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at`),
      listAttempts: db.prepare<[string], AttemptRow>('SELECT * FROM attempts WHERE job_id = ? ORDER BY id'),
      countByStatus: db.prepare<[], { status: JobStatus; n: number }>(
        // successes are not in jobs_status: all jobs less the others, in one snapshot
        `SELECT status, count(*) AS n FROM jobs WHERE ${NOT_SUCCESS} GROUP BY status
         UNION ALL
         SELECT 'success', count(*) - (SELECT count(*) FROM jobs WHERE ${NOT_SUCCESS}) FROM jobs`,
      ),
      claim: db.prepare<Named, JobRow>(claimSql('jobs_claim', '')),
      claimTenant: db.prepare<Named, JobRow>(claimSql('jobs_claim_tenant', 'AND tenant_id = @tenant')),
      // the first entry of the next tenant in jobs_claim_tenant: that tenant and its earliest due_at
      nextWaitingTenant: db.prepare<Named, { tenant_id: string; due_at: number }>(`
        SELECT tenant_id, due_at FROM jobs INDEXED BY jobs_claim_tenant
        WHERE ${WAITING} AND lease_owner IS NULL AND tenant_id > @after
        ORDER BY tenant_id, due_at, id LIMIT 1`),
      nextDueAt: db
        .prepare<[], number>(
          `SELECT due_at FROM jobs INDEXED BY jobs_claim WHERE ${WAITING} AND lease_owner IS NULL ORDER BY due_at, id LIMIT 1`,
        )
        .pluck(),
      markRunning: db.prepare<Named>(`
        UPDATE jobs SET status = 'running', updated_at = @now
        WHERE id = @id AND lease_owner = @owner AND ${WAITING}`),
      // Inserted after its job's row was updated, so only while the job exists (a pruned job must
      // not fail the whole batch on the foreign key).
      insertAttempt: db.prepare<Named>(`
        INSERT INTO attempts (job_id, attempt, started_at, finished_at, duration_ms, outcome,
                              error_kind, status_code, error, response_body)
        VALUES (@job_id, @attempt, @started_at, @finished_at, @duration_ms, @outcome,
                @error_kind, @status_code, @error, @response_body)`),
      // The common case: the dispatcher still holds the job, which takes its next state.
      completeHeld: db.prepare<Named>(`
        UPDATE jobs SET
          attempts = attempts + 1,
          last_error = @error,
          last_status_code = @status_code,
          updated_at = @now,
          status = @status,
          completed_at = @completed_at,
          next_attempt_at = @next_attempt_at,
          due_at = coalesce(@next_attempt_at, due_at),
          lease_owner = NULL,
          lease_expires_at = NULL
        WHERE id = @id AND ${HELD}`),
      // Otherwise (cancelled, or its lease lapsed and another took it) only the attempt is counted.
      completeUnheld: db.prepare<Named>(`
        UPDATE jobs SET
          attempts = attempts + 1,
          last_error = @error,
          last_status_code = @status_code,
          updated_at = @now
        WHERE id = @id`),
      release: db.prepare<Named>(`
        UPDATE jobs SET
          status = ${GIVEN_BACK_STATUS},
          due_at = coalesce(@due_at, due_at),
          next_attempt_at = CASE
            WHEN @due_at IS NOT NULL AND (status = 'retrying' OR (status = 'running' AND attempts > 0)) THEN @due_at
            ELSE next_attempt_at END,
          lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND lease_owner = @owner`),
      renewLeases: db.prepare<Named>(`
        UPDATE jobs SET lease_expires_at = @lease_expires_at
        WHERE lease_owner = @owner`),
      recoverExpired: db.prepare<Named>(recoverSql('lease_owner IS NOT NULL AND lease_expires_at < @now')),
      recoverAll: db.prepare<Named>(recoverSql('lease_owner IS NOT NULL')),
      promoteDue: db.prepare<Named>(`
        UPDATE jobs INDEXED BY jobs_scheduled SET status = 'queued', updated_at = @now
        WHERE status = 'scheduled' AND run_at <= @now`),
      cancel: db.prepare<Named, JobRow>(`
        UPDATE jobs SET status = 'cancelled', completed_at = @now, updated_at = @now, next_attempt_at = NULL,
          lease_owner = NULL, lease_expires_at = NULL
        WHERE id = @id AND status IN ('scheduled','queued','running','retrying')
        RETURNING *`),
      retry: db.prepare<Named, JobRow>(`
        UPDATE jobs SET status = 'queued', due_at = @now, run_at = min(run_at, @now), attempts = 0, completed_at = NULL,
          next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
        WHERE id = @id AND status IN ('failed','cancelled')
        RETURNING *`),
      // Attempts go with their job (ON DELETE CASCADE).
      pruneTerminal: db.prepare<Named>(`
        DELETE FROM jobs WHERE id IN (
          SELECT id FROM jobs INDEXED BY jobs_prune WHERE ${TERMINAL} AND completed_at < @before
          ORDER BY completed_at LIMIT @limit)`),
      pruneIdempotency: db.prepare<[number]>(
        'DELETE FROM idempotency_keys WHERE expires_at IS NOT NULL AND expires_at <= ?',
      ),
      pruneDedupe: db.prepare<[number]>('DELETE FROM dedupe_keys WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      insertApiKey: db.prepare<Named>(`
        INSERT INTO api_keys (id, tenant_id, key_hash, label, created_at)
        VALUES (@id, @tenant_id, @key_hash, @label, @created_at)
        ON CONFLICT (id) DO NOTHING`),
      getApiKey: db.prepare<[string], ApiKeyRecord>(`${API_KEY_SELECT} WHERE id = ?`),
      listApiKeys: db.prepare<[], ApiKeyRecord>(`${API_KEY_SELECT} ORDER BY created_at, id`),
      // The no-op SET on an already revoked key makes RETURNING answer for it too.
      revokeApiKey: db.prepare<Named, ApiKeyRecord>(`
        UPDATE api_keys SET revoked_at = coalesce(revoked_at, @now)
        WHERE id = @id
        RETURNING id, tenant_id, key_hash, label, created_at, revoked_at`),
    };
  }
}

/** A running job whose dispatcher is gone is due again now; a held waiting job keeps its due time. */
function recoverSql(where: string): string {
  return `
    UPDATE jobs INDEXED BY jobs_held SET
      status = ${GIVEN_BACK_STATUS},
      due_at = CASE WHEN status = 'running' THEN @now ELSE due_at END,
      next_attempt_at = CASE WHEN status = 'running' AND attempts > 0 THEN @now ELSE next_attempt_at END,
      lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
    WHERE ${where}`;
}

function completionParams(c: AttemptCompletion, now: number): Named {
  const next = c.next;
  return {
    id: c.attempt.job_id,
    owner: c.owner,
    now,
    error: c.attempt.error,
    status_code: c.attempt.status_code,
    status: next.status,
    completed_at: next.status === 'retrying' ? null : now,
    next_attempt_at: next.status === 'retrying' ? next.next_attempt_at : null,
  };
}
