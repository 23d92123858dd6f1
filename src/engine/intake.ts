// Intake: group commit for new jobs. Requests that arrive in the same turn of the event loop are
// written in ONE transaction, and each caller is answered only after that commit: no job is
// acknowledged before it is durable. A small LRU+TTL cache answers repeated dedupe hits without
// a write; the store's dedupe index stays the source of truth (it survives restarts).

import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { CreateOutcome, NewJob } from '../domain/job.js';
import { traceIdOf } from '../domain/trace-context.js';
import type { EventBus } from '../observability/events.js';
import type { ClaimedJob, Store } from '../store/store.js';

interface Pending {
  job: NewJob;
  resolve: (o: CreateOutcome) => void;
  reject: (e: unknown) => void;
}

/** The engine side of claim-at-insert: due-now jobs are written already held and handed over. */
export interface Claimer {
  readonly owner: string;
  readonly leaseMs: number;
  /** Jobs due within this long are taken too, and held in memory until their time. */
  readonly holdAheadMs: number;
  /** Whether a job for this destination may be created held by this engine (see Engine.mayHold). */
  mayHold?(tenantId: string, url: string): boolean;
  /** Grants up to n slots in the memory queue; the granted number is returned and held for adopt. */
  reserve(n: number): number;
  /** Takes a job created under its lease into the memory queue, using one reserved slot. */
  adopt(job: ClaimedJob): void;
  /** Gives back reserved slots that were not used (duplicates, replays, failed writes). */
  unreserve(n: number): void;
}

export interface IntakeOptions {
  store: Store;
  clock: Clock;
  events: EventBus;
  /** Called with each created job's run_at once it is committed. */
  onCreated: (runAt: number) => void;
  /** When set, jobs due now are claimed at insert by this engine instead of by a later claim. */
  claimer?: Claimer | null;
  dedupeCacheSize: number;
  maxBatch?: number;
}

export class Intake {
  private pending: Pending[] = [];
  private scheduled = false;
  private inflight = 0;
  private readonly cache: LRUCache<string, { job_id: string; expires_at: number }> | null;
  private readonly maxBatch: number;

  constructor(private readonly o: IntakeOptions) {
    this.cache = o.dedupeCacheSize > 0 ? new LRUCache({ max: o.dedupeCacheSize }) : null;
    this.maxBatch = o.maxBatch ?? 2000;
  }

  /** Jobs accepted but not yet answered (for graceful shutdown). */
  get busy(): boolean {
    return this.pending.length > 0 || this.inflight > 0;
  }

  async submit(job: NewJob): Promise<CreateOutcome> {
    return this.enqueue(job, true);
  }

  /**
   * Many jobs answered together (a batch request): every one that needs a write goes into the same
   * transaction (with whatever else arrived in this turn of the event loop).
   */
  submitMany(jobs: NewJob[]): Promise<CreateOutcome[]> {
    const outcomes = Promise.all(jobs.map((j) => this.enqueue(j, false)));
    if (this.pending.length >= this.maxBatch) void this.flush();
    return outcomes;
  }

  private async enqueue(job: NewJob, flushAtMax: boolean): Promise<CreateOutcome> {
    // The cache answers only requests without an Idempotency-Key: with one, the store must also
    // record the key, so those always go through the transaction.
    if (this.cache && job.dedupe_hash && !job.idempotency_key) {
      const hit = this.cache.get(cacheKey(job.tenant_id, job.dedupe_hash));
      if (hit && hit.expires_at > this.o.clock.now()) {
        const existing = await this.o.store.getJob(hit.job_id);
        if (existing) {
          this.o.events.emit({ type: 'job.deduplicated', job_id: existing.id, tenant_id: existing.tenant_id, source: 'cache', trace_id: traceIdOf(existing.traceparent) });
          return { kind: 'deduplicated', job: existing };
        }
      }
    }
    return new Promise<CreateOutcome>((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      if (flushAtMax && this.pending.length >= this.maxBatch) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /**
   * Puts the engine's lease on as many jobs due now or soon (within holdAheadMs) as it has room
   * for, earliest first; returns how many.
   */
  private lease(batch: Pending[], now: number): number {
    const claimer = this.o.claimer;
    if (!claimer) return 0;
    const soon = now + claimer.holdAheadMs;
    const holdable = (p: Pending) => p.job.run_at <= soon && (claimer.mayHold?.(p.job.tenant_id, p.job.destination.url) ?? true);
    let due = 0;
    for (const p of batch) if (holdable(p)) due++;
    let granted = due > 0 ? claimer.reserve(due) : 0;
    const total = granted;
    const lease = { owner: claimer.owner, expires_at: now + claimer.leaseMs };
    // when room is short, jobs due now go first
    const order = granted < due ? [...batch].sort((a, b) => a.job.run_at - b.job.run_at) : batch;
    for (const p of order) {
      if (granted === 0) break;
      if (holdable(p)) {
        p.job.lease = lease;
        granted--;
      }
    }
    return total;
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.inflight += batch.length;
    const now = this.o.clock.now();
    const started = performance.now();
    let leased = this.lease(batch, now);
    let outcomes: CreateOutcome[];
    // What follows from the commit itself happens as soon as it has committed, while the fsync may
    // still run (see Store.createJobs): jobs created held go to the engine, the others' due times
    // to it, the dedupe cache learns them, the events say so. The callers are answered once the
    // commit is durable.
    let committed = false;
    const onCommit = (written: CreateOutcome[]) => {
      committed = true;
      for (let i = 0; i < batch.length; i++) {
        const job = (batch[i] as Pending).job;
        const out = written[i] as CreateOutcome;
        switch (out.kind) {
          case 'created':
            // a job behind others of its ordering key was written without its lease and is not due
            if (job.lease && !out.job.waiting_for_key) {
              this.o.claimer?.adopt({ ...out.job, lease_owner: job.lease.owner });
              leased--;
            } else if (!out.job.waiting_for_key) {
              this.o.onCreated(out.job.run_at);
            }
            if (this.cache && job.dedupe_hash && job.dedupe_expires_at) {
              this.cache.set(cacheKey(job.tenant_id, job.dedupe_hash), { job_id: out.job.id, expires_at: job.dedupe_expires_at });
            }
            this.o.events.emit({ type: 'job.created', job_id: out.job.id, tenant_id: out.job.tenant_id, status: out.job.status, run_at: out.job.run_at, trace_id: traceIdOf(out.job.traceparent) });
            break;
          case 'idempotent_replay':
            this.o.events.emit({ type: 'job.idempotent_replay', job_id: out.job.id, tenant_id: out.job.tenant_id, trace_id: traceIdOf(out.job.traceparent) });
            break;
          case 'deduplicated':
            this.o.events.emit({ type: 'job.deduplicated', job_id: out.job.id, tenant_id: out.job.tenant_id, source: 'store', trace_id: traceIdOf(out.job.traceparent) });
            break;
        }
      }
    };
    try {
      outcomes = await this.o.store.createJobs(
        batch.map((p) => p.job),
        now,
        onCommit,
      );
    } catch (err) {
      if (leased > 0) this.o.claimer?.unreserve(leased);
      this.inflight -= batch.length;
      this.o.events.emit({ type: 'store.error', op: 'create', error: (err as Error).message });
      for (const p of batch) p.reject(err);
      return;
    }
    // a store that does not call back (a test's double) commits durably before resolving
    if (!committed) onCommit(outcomes);
    this.inflight -= batch.length;
    this.o.events.emit({ type: 'store.write', op: 'create', count: batch.length, duration_ms: performance.now() - started });
    for (let i = 0; i < batch.length; i++) (batch[i] as Pending).resolve(outcomes[i] as CreateOutcome);
    // leases of inputs that created nothing (replays, duplicates) free their slots
    if (leased > 0) this.o.claimer?.unreserve(leased);
  }
}

function cacheKey(tenant: string, hash: string): string {
  return `${tenant}\u0000${hash}`;
}
