// What the routes are given: collaborators are passed in, never imported as singletons.
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { DestinationState } from '../engine/destinations.js';
import type { Intake } from '../engine/intake.js';
import type { EventBus } from '../observability/events.js';
import type { Tracing } from '../observability/tracing.js';
import type { Store } from '../store/store.js';

export type Phase = 'starting' | 'ready' | 'draining' | 'stopped';

export interface Lifecycle {
  phase: Phase;
}

export interface EngineControl {
  readonly isRunning: boolean;
  notifyDue(at: number): void;
  forget(id: string): void;
  /** From the engine thread (ENGINE_THREAD) these come back as promises. */
  destinations(tenantId?: string): DestinationState[] | Promise<DestinationState[]>;
  resetDestination(key: string): DestinationState | null | Promise<DestinationState | null>;
}

export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

export interface DestinationCheck {
  checkUrl(url: string): { ok: true } | { ok: false; reason: string };
}

/** The schedule ticker, told of a schedule that ticks at `at` (created or resumed). */
export interface ScheduleWaker {
  notify(at: number | null): void;
}

export interface ApiContext {
  config: Config;
  clock: Clock;
  events: EventBus;
  store: Store;
  intake: Intake;
  engine: EngineControl;
  lifecycle: Lifecycle;
  metrics: MetricsEndpoint;
  destinations: DestinationCheck;
  /** Opens each created job's create span (observability/tracing.ts). */
  tracing: Tracing;
  /** Absent when this instance runs no ticker (SCHEDULE_TICKER=false): another one finds the schedule at its poll. */
  schedules?: ScheduleWaker;
}
