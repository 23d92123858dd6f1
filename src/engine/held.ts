// A job this engine holds in memory under its lease. Its life is in local-queue.ts (states) and
// lanes.ts (which job of which destination goes next).

import type { ClaimedJob } from '../store/store.js';

/**
 * ahead: held until its run_at; waiting: in its destination lane; inflight: an attempt is out;
 * gone: no longer held (finished, dropped or given back; a lane skips it when it comes up).
 */
export type HeldState = 'ahead' | 'waiting' | 'inflight' | 'gone';

export interface Held {
  job: ClaimedJob;
  state: HeldState;
  /** Cancelled while in flight: the attempt finishes and is its last. */
  cancelled: boolean;
  /** Still in flight when a drain timed out: given back to the store, its result ignored. */
  abandoned: boolean;
  startedAt: number;
  /** The attempt in flight is its destination's circuit probe. */
  probe: boolean;
  /** The destination lane key, once it has joined one. */
  laneKey: string | null;
}

export function held(job: ClaimedJob): Held {
  return { job, state: 'waiting', cancelled: false, abandoned: false, startedAt: 0, probe: false, laneKey: null };
}
