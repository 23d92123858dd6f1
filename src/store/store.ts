// The one storage contract. Every database has a driver behind it (sqlite/ now, postgres/ later) and
// every driver passes the same contract suite (test/store/store-contract.ts).
//
// Rules every driver keeps:
// - Each method is one atomic statement or transaction; a state change is guarded on the state (and,
//   for claimed work, the lease owner) it expects, so two processes sharing a database never both win.
// - Time comes in as `now` (epoch ms) from the caller's Clock; a driver never reads the system clock.
// - `due_at` is when a waiting job (scheduled | queued | retrying) may next be attempted: run_at for a
//   new job, next_attempt_at after a failed attempt. It is what claims and the scheduler look at.

import type { Attempt } from '../domain/attempt.js';
import type { BulkAction, BulkProgress, JobSelector } from '../domain/bulk.js';
import type { CreateOutcome, Job, JobStatus, NewJob } from '../domain/job.js';
import type { OrderingKey } from '../domain/ordering.js';
import type { NextStep } from '../domain/retry-policy.js';
import type { ScheduleStore } from './schedules.js';

export interface ListFilter {
  tenant_id?: string;
  status?: JobStatus;
  type?: string;
  ordering_key?: string;
}

export interface Page<T> {
  data: T[];
  /** Opaque; null on the last page. Walking with it visits every job exactly once, newest first. */
  next_cursor: string | null;
}

/** A job a dispatcher holds under its lease, with the number its next attempt will carry. */
export interface ClaimedJob extends Job {
  lease_owner: string;
}

/** The result of one attempt, written in one step with the job's next state. */
export interface AttemptCompletion {
  attempt: Attempt;
  /** The dispatcher that holds the lease. The status changes only while it still holds it. */
  owner: string;
  next: NextStep;
  /** The job's ordering key, if it has one: a job that ends hands its key to the next in line. */
  ordering?: OrderingKey | null;
}

/** An API key as stored: its hash, never the key. */
export interface ApiKeyRecord {
  /** The non-secret id inside the key (pg_<id>_<secret>). */
  id: string;
  /** The tenant it acts for; null for an admin key. */
  tenant_id: string | null;
  /** Hex SHA-256 of the whole key. */
  key_hash: string;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

export type NewApiKey = Omit<ApiKeyRecord, 'revoked_at'>;

export type CommandResult =
  | { kind: 'ok'; job: Job }
  | { kind: 'not_found' }
  | { kind: 'conflict'; job: Job };

/** One step of a bulk command (see Store.bulkStep). */
export interface BulkStep {
  action: BulkAction;
  selector: JobSelector;
  /** Jobs this step acts on at most (1..1000); it also examines at most 4 × chunk rows. */
  chunk: number;
  /** Jobs the whole command acts on at most; null for every matching job. */
  limit: number | null;
  /** The walk so far (BULK_START to begin). Ignored with `operation`: its record holds the walk. */
  progress: BulkProgress;
  /** false: change nothing, only count what the command would touch (a dry run). */
  apply: boolean;
  /** The command's idempotency record (from beginBulk), advanced in the same transaction as the jobs. */
  operation?: BulkOperationKey;
}

export interface BulkStepResult {
  progress: BulkProgress;
  /** Jobs this step changed (or, without apply, would change). */
  jobs: { id: string; tenant_id: string }[];
}

export interface BulkOperationKey {
  /** The tenant the command is limited to, or '*' for all. Keys are unique per scope. */
  scope: string;
  key: string;
}

export type BulkBegin =
  | { kind: 'started'; progress: BulkProgress }
  /** An unexpired record with the same request: its progress (done, or left by a call that stopped or still runs). */
  | { kind: 'resumed'; progress: BulkProgress }
  | { kind: 'conflict' };

/** A destination lane's state that travels with its lease from one instance to the next (see Store.syncLanes). */
export interface LaneLease {
  tenant_id: string;
  /** The origin of the destination URL (new URL(url).origin). */
  origin: string;
  circuit: 'closed' | 'open' | 'half_open';
  /** Consecutive "down" results. */
  failures: number;
  /** When an open circuit lets its probe out (0 when closed). */
  open_until: number;
  /** The circuit's current cool-down; null: the configured first one. */
  cooldown_ms: number | null;
  /** The token bucket's level at tokens_at; null: no bucket (a full one). */
  tokens: number | null;
  tokens_at: number | null;
}

/** A lane an owner holds, with its state: kept (renewed) or given up. */
export interface LaneSync extends LaneLease {
  keep: boolean;
}

/** syncLanes where destinations are never held by anyone else: every lane marked keep is the owner's. */
export function keptLanes(lanes: LaneSync[]): { tenant_id: string; origin: string }[] {
  return lanes.filter((l) => l.keep).map(({ tenant_id, origin }) => ({ tenant_id, origin }));
}

/** Schedules (recurring jobs) are their own part of the contract: ./schedules.ts. */
export interface Store extends ScheduleStore {
  readonly driver: 'sqlite' | 'postgres';
  /**
   * Destinations are held under a lease, so that one instance at a time delivers each (PostgreSQL,
   * several instances on one database): claimDue takes only jobs whose destination (tenant, origin)
   * no other owner holds unexpired, and holds those destinations for owner until now + leaseMs in
   * the same statement; nextDueAt(owner, now) skips destinations others hold. false: destinations
   * are never held (SQLite: one process per file), syncLanes and loadLanes keep nothing.
   */
  readonly laneLeases: boolean;

  /** Applies pending versioned migrations. Safe to call on every start. */
  migrate(): Promise<void>;
  /** A cheap query that proves the database answers (for /readyz). */
  ping(): Promise<void>;
  /**
   * Optional: proves the database can take a write, changing nothing (for /readyz while the last
   * write failed as store-unavailable). Without it /readyz relies on ping().
   */
  probeWrite?(): Promise<void>;
  close(): Promise<void>;

  // ── intake ───────────────────────────────────────────────────────────────────────────────────
  /**
   * Creates many jobs in ONE transaction (group commit), returning one outcome per input, in order.
   * For each input, inside that transaction:
   * - idempotency_key set and an unexpired (tenant_id, idempotency_key) record exists:
   *   same idempotency_hash → idempotent_replay with the original job; other hash → idempotency_conflict.
   * - else dedupe_hash set and an unexpired (tenant_id, dedupe_hash) record exists → deduplicated
   *   with the original job (the idempotency record, if any, is then written pointing at it).
   * - else the job is inserted (status scheduled when run_at > now, else queued; due_at = run_at),
   *   with its idempotency and dedupe records (expired records for the same key are replaced), and
   *   held under `lease` when the input carries one (claimed at insert by the creating engine).
   * - a job with an ordering_key joins the back of its (tenant, key) line (see domain/ordering.ts):
   *   behind an unfinished job of its key it is written waiting for its key (never claimable, and
   *   without the lease it asked for: `waiting_for_key` in the outcome says so) until the jobs
   *   before it have ended; the key's lock serializes creates and ends of one key across instances.
   * Inputs later in the batch see the ones before them (two requests with one key create one job).
   *
   * `committed`, when given, is called once with the same outcomes as soon as the transaction has
   * committed, which may be before it is durable (SQLite at FULL: before the WAL's fdatasync); a
   * store whose commit is durable calls it right before resolving. It lets the engine start jobs
   * created held while the fsync runs: a power cut before the fsync ends can lose such a job after
   * its delivery began, but never one the caller was told is created (at-least-once, see DESIGN).
   */
  createJobs(jobs: NewJob[], now: number, committed?: (outcomes: CreateOutcome[]) => void): Promise<CreateOutcome[]>;

  // ── reads ────────────────────────────────────────────────────────────────────────────────────
  getJob(id: string): Promise<Job | null>;
  /** Newest first (ids are time-sortable). limit 1..1000. */
  listJobs(filter: ListFilter, limit: number, cursor: string | null): Promise<Page<Job>>;
  /** Oldest first. */
  listAttempts(jobId: string): Promise<Attempt[]>;
  /** Jobs per status, every status present (0 when none). */
  countByStatus(): Promise<Record<JobStatus, number>>;

  // ── dispatch ─────────────────────────────────────────────────────────────────────────────────
  /**
   * Claims up to `limit` waiting jobs whose due_at <= now and that no one holds, in one transaction.
   * Tenants take turns: when several tenants have due jobs, each gets a share of the limit (its
   * oldest due first), starting after the tenant the previous claim ended with; what is left goes
   * oldest due first. One tenant's backlog never crowds another tenant's due job out of a claim.
   * It sets lease_owner = owner, lease_expires_at = now + leaseMs, and a scheduled job
   * becomes queued. Returns them.
   */
  claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<ClaimedJob[]>;
  /**
   * Earliest due_at among waiting jobs no one holds (jobs waiting for their ordering key are never
   * due), or null. With lane leases and an owner: only jobs owner may claim at now (not of a
   * destination another owner holds).
   */
  nextDueAt(owner?: string, now?: number): Promise<number | null>;
  /** Marks held jobs running (an attempt is in flight). Only jobs still waiting and held by owner change. */
  markRunning(ids: string[], owner: string, now: number): Promise<void>;
  /**
   * Records attempts and applies each job's next step, all in ONE transaction. For each completion:
   * the attempt row is always inserted and the job's attempts/last_error/last_status_code/updated_at
   * always updated (the attempt happened). The status changes only if owner still holds the job and
   * it is not terminal (a job cancelled mid-flight stays cancelled; it need not have been marked
   * running, since short attempts are never marked): success/failed set completed_at;
   * retrying sets next_attempt_at = due_at; the lease is cleared in every case. A completion with
   * `ordering` that ends its job (success, failed) makes the next job of that key's line due, in the
   * same transaction.
   */
  completeAttempts(completions: AttemptCompletion[], now: number): Promise<void>;
  /**
   * Gives held jobs back without an attempt (shutdown, or a rate-limit wait too long to hold in memory).
   * A running job goes back to retrying if it has made attempts, else queued; the lease is cleared;
   * with dueAt, due_at (and next_attempt_at for retrying jobs) is moved to it. Only jobs owner holds.
   */
  release(ids: string[], owner: string, now: number, dueAt?: number): Promise<void>;
  /** Extends the lease of every job owner holds to now + leaseMs. Returns how many. */
  renewLeases(owner: string, now: number, leaseMs: number): Promise<number>;
  /**
   * Frees jobs whose lease expired before now (their dispatcher died), or, with `all`, every held job
   * (an embedded single-process database at start: whoever held them is gone). A running job goes back
   * to retrying (attempts > 0) or queued, due now: it is delivered again (at-least-once). Returns how many.
   */
  recoverLeases(now: number, opts?: { all?: boolean }): Promise<number>;
  /** Promotes scheduled jobs whose run_at has passed to queued. Returns how many. */
  promoteDue(now: number): Promise<number>;
  /**
   * Renews the destination leases owner keeps, in ONE statement: each lane marked keep is held
   * until now + leaseMs (taken when no other owner holds it unexpired) and its state written; every
   * other destination owner holds is given up (owner cleared; the state written for those listed).
   * Returns the destinations owner holds after it. Without lane leases: the ones marked keep.
   */
  syncLanes(owner: string, now: number, leaseMs: number, lanes: LaneSync[]): Promise<{ tenant_id: string; origin: string }[]>;
  /** The saved state of these destinations (those that have one). Without lane leases: none. */
  loadLanes(keys: { tenant_id: string; origin: string }[]): Promise<LaneLease[]>;

  // ── commands ─────────────────────────────────────────────────────────────────────────────────
  /**
   * Any non-terminal job → cancelled (lease cleared, completed_at set). Terminal → conflict.
   * A keyed job's line moves on in the same transaction (cancelling the head makes the next due).
   */
  cancelJob(id: string, now: number): Promise<CommandResult>;
  /**
   * failed | cancelled → queued, due now, attempts = 0 (a fresh budget), last_error kept, completed_at
   * cleared. The attempt history stays. Other statuses → conflict. A keyed job goes to the back of
   * its key's line: due now when the key is idle, else waiting for its key.
   */
  retryJob(id: string, now: number): Promise<CommandResult>;

  // ── bulk commands ────────────────────────────────────────────────────────────────────────────
  /**
   * Records an idempotent bulk command, atomically: no unexpired record for (scope, key) → a new one
   * at BULK_START (an expired one is replaced) → started; one with the same request_hash → resumed
   * with its progress; another hash → conflict.
   */
  beginBulk(op: BulkOperationKey & { request_hash: string; expires_at: number }, now: number): Promise<BulkBegin>;
  /**
   * One bounded step of a bulk command, in ONE transaction: walks the selected statuses in id order
   * from the progress's cursor, takes up to min(chunk, limit - jobs so far) matching jobs, and with
   * apply changes each, guarded on its status still being one the command selects:
   *   retry:  failed | cancelled → queued, as retryJob (fresh budget, due now, history kept)
   *   cancel: scheduled | queued | retrying → cancelled, as cancelJob (lease cleared)
   * The progress (cursor, tally of jobs and destination origins, done) is returned and, with an
   * operation, written to its record in the same transaction. A walk never visits a job twice, so a
   * command acts on each job at most once, however many calls share its record.
   */
  bulkStep(step: BulkStep, now: number): Promise<BulkStepResult>;

  // ── API keys ─────────────────────────────────────────────────────────────────────────────────
  /** Stores a key. Returns false (and changes nothing) when a key with this id already exists. */
  createApiKey(key: NewApiKey): Promise<boolean>;
  getApiKey(id: string): Promise<ApiKeyRecord | null>;
  /** Every key, revoked ones included, oldest first. */
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /**
   * Sets revoked_at = now on a key not yet revoked (a revoked key keeps its first revoked_at).
   * Returns the key as it now is, or null when there is no such key.
   */
  revokeApiKey(id: string, now: number): Promise<ApiKeyRecord | null>;

  // ── housekeeping ─────────────────────────────────────────────────────────────────────────────
  /** Deletes up to `limit` terminal jobs (and their attempts) completed before `before`. Returns how many. */
  pruneTerminal(before: number, limit: number): Promise<number>;
  /** Deletes idempotency, dedupe and bulk-command records that expired before now. Returns how many. */
  pruneExpiredKeys(now: number): Promise<number>;
}
