// Typed events the engine and API emit. Metrics and logs subscribe; the engine never calls
// Prometheus or the logger itself.

import type { AttemptOutcome, ErrorKind } from '../domain/attempt.js';
import type { JobStatus } from '../domain/job.js';
import type { CircuitState } from '../engine/circuit.js';

export type PulseEvent =
  | { type: 'job.created'; job_id: string; tenant_id: string; status: JobStatus; run_at: number; trace_id?: string }
  | { type: 'job.idempotent_replay'; job_id: string; tenant_id: string; trace_id?: string }
  | { type: 'job.deduplicated'; job_id: string; tenant_id: string; source: 'cache' | 'store'; trace_id?: string }
  | {
      type: 'attempt.started';
      job_id: string;
      tenant_id: string;
      attempt: number;
      /** How late the attempt starts after the job became due (ms, >= 0). */
      lateness_ms: number;
      /** The job's W3C trace id, when it has a trace (so does every event below that carries one). */
      trace_id?: string;
    }
  | {
      type: 'attempt.finished';
      job_id: string;
      tenant_id: string;
      attempt: number;
      outcome: AttemptOutcome;
      error_kind: ErrorKind | null;
      status_code: number | null;
      duration_ms: number;
      /** The job's status after this attempt (as decided; a job cancelled mid-flight stays cancelled). */
      next_status: JobStatus;
      next_attempt_at: number | null;
      trace_id?: string;
    }
  | { type: 'job.status'; job_id: string; tenant_id: string; from: JobStatus | null; to: JobStatus; reason: string; trace_id?: string }
  | {
      type: 'circuit.changed';
      tenant_id: string;
      origin: string;
      from: CircuitState;
      to: CircuitState;
      /** Consecutive "down" results when it changed. */
      failures: number;
      /** When an opened circuit lets its probe out. */
      probe_at: number | null;
      last_error: string | null;
    }
  /**
   * A destination held here under a lease (PostgreSQL, several instances) is not any more: another
   * instance holds it, or its lease ran out unrenewed. Its waiting jobs went back to the store.
   */
  | { type: 'lane.lost'; tenant_id: string; origin: string; released: number }
  | { type: 'ratelimit.wait'; tenant_id: string; wait_ms: number; released: boolean }
  | { type: 'store.write'; op: string; count: number; duration_ms: number }
  | { type: 'store.error'; op: string; error: string }
  | { type: 'leases.recovered'; count: number }
  /** A tenant's own signing secrets all expire soon (at expires_at); after it, the global secret signs. */
  | { type: 'signing.expiring'; tenant_id: string; expires_at: number }
  /** A tenant's own signing secrets have all expired: its deliveries are signed with the global secret. */
  | { type: 'signing.fallback'; tenant_id: string; expires_at: number }
  | { type: 'jobs.pruned'; count: number }
  /** One tick of a schedule made into a job (or replayed: an earlier round made it; or refused by a rule). */
  | {
      type: 'schedule.tick';
      schedule_id: string;
      tenant_id: string;
      tick_at: number;
      /** How long after the tick its job was created (ms). */
      late_ms: number;
      job_id: string | null;
      outcome: 'created' | 'replayed' | 'deduplicated' | 'refused';
      reason?: string;
    }
  /** Due ticks not created: missed beyond the catch-up limit, or skipped by the schedule's policy. */
  | { type: 'schedule.skipped'; schedule_id: string; tenant_id: string; count: number; policy: 'catch_up' | 'skip' }
  | { type: 'schedule.changed'; schedule_id: string; tenant_id: string; action: 'created' | 'paused' | 'resumed' | 'deleted' | 'ended' };

export type PulseEventType = PulseEvent['type'];
export type Listener = (event: PulseEvent) => void;

export class EventBus {
  private readonly listeners: Listener[] = [];

  on(listener: Listener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(event: PulseEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // an observer must never break the engine
      }
    }
  }
}
