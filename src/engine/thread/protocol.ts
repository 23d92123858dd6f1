// What crosses between the main thread and the engine thread (see engine-thread.ts for why).
//
// Hot traffic goes in batches, never one message per job:
//   main → engine  adopt  the jobs one group commit created already leased to this engine
//                  due    the earliest due time among jobs created or retried in that turn
//   engine → main  events the typed events of the last 5 ms, for the metrics (kept on the main thread),
//                  and the log lines they made, already formatted on the engine thread: the main
//                  thread writes them as one chunk, so the two threads' lines never interleave
// Counters both sides read without a message sit in a SharedArrayBuffer (SLOT below): the room the
// engine has for jobs created already held, the slots the main thread has granted and not yet
// handed over, and the engine's stats for /metrics. Rare things (start, drain, destinations,
// reset, forget) are calls with a reply.

import type { Config } from '../../config.js';
import type { SigningSecret } from '../../delivery/signing.js';
import type { PulseEvent } from '../../observability/events.js';
import type { ClaimedJob } from '../../store/store.js';

export const SLOT = {
  /** Jobs the engine's memory queue can still take (capacity − queued − reserved), engine-written. */
  room: 0,
  /** Slots the main thread granted to its intake that the engine has not adopted yet. */
  inTransit: 1,
  queued: 2,
  parked: 3,
  ahead: 4,
  inFlight: 5,
  /** The engine isolate's V8 heap in KiB (committed, used, and the young generation's committed part). */
  heapKib: 6,
  heapUsedKib: 7,
  youngKib: 8,
} as const;
export const SLOTS = 9;

export interface WorkerInit {
  config: Config;
  /** signingSecrets(config), so the engine thread does not load config.ts (zod and the API schemas). */
  secrets: SigningSecret[];
  owner: string;
  shared: SharedArrayBuffer;
  /** The SQLite write lock both connections take (src/store/sqlite/write-lock.ts). */
  writeLock: SharedArrayBuffer;
}

export type CallOp = 'start' | 'drain' | 'destinations' | 'reset' | 'close';

export type ToEngine =
  | { t: 'adopt'; jobs: ClaimedJob[] }
  | { t: 'due'; at: number }
  | { t: 'forget'; id: string }
  | { t: 'call'; id: number; op: CallOp; arg?: unknown };

export type FromEngine =
  | { t: 'events'; events: PulseEvent[]; log: string }
  | { t: 'reply'; id: number; result?: unknown; error?: string };
