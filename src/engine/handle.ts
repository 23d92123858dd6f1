// What the rest of the service holds of the engine: the Engine itself (ENGINE_THREAD=false) or
// EngineThread, its stand-in on the main thread when it runs on a worker thread. The reads that
// would cross a thread may answer with a promise.

import type { DestinationState } from './destinations.js';
import type { EngineStats } from './engine.js';
import type { Claimer } from './intake.js';

/**
 * A job created by this process and due within this long is written already held by this engine
 * (see Intake) and waits in memory for its time, so it runs then without a claim statement and
 * without a scheduler round trip through the store. Well inside any lease (renewed in bulk anyway).
 */
export const HOLD_AHEAD_MS = 2000;

export interface EngineHandle extends Claimer {
  readonly isRunning: boolean;
  stats(): EngineStats;
  start(): Promise<void>;
  notifyDue(at: number): void;
  forget(id: string): void;
  destinations(tenantId?: string): DestinationState[] | Promise<DestinationState[]>;
  resetDestination(key: string): DestinationState | null | Promise<DestinationState | null>;
  drain(timeoutMs: number): Promise<{ released: number; abandoned: number }>;
}
