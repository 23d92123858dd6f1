// WAL checkpoints when two connections of this process write the same file (ENGINE_THREAD, see
// src/engine/thread/): run on the engine thread's own connection, with no isolate of their own
// (the Checkpointer's worker costs about 10 MB of RSS), and finished under the write lock.
//
// Why under the lock: SQLite starts the WAL over only in a write transaction that began while every
// frame was copied to the database. On one thread the store finishes the checkpoint between its own
// transactions (SqliteStore.finishCheckpoint). With a second writer, that one is in the middle of a
// transaction at that moment (it was waiting for the lock the first had just let go), its frames land
// after the copy, and no transaction ever begins on a wholly copied log: two writers without pause
// grew the WAL to 580 MB in 5 s without a single restart, where one alone started it over 7 times.
//
// Each interval:
//  1. an fdatasync of the WAL in libuv's pool, so the checkpoint's own WAL sync finds little to do;
//  2. a PASSIVE checkpoint, no lock: the big copy, while the other thread goes on writing;
//  3. once the log is past restartFrames: fdatasyncs of the database file (the pages copied: SQLite
//     syncs it only when a checkpoint reaches the end of the log) and the WAL in the pool, then
//     another pass takes what was written meanwhile, until little is left;
//  4. under the lock, a last PASSIVE checkpoint copies that little and syncs it. With no writer in
//     a transaction, the next write of either connection starts the WAL over and cuts it back to
//     journal_size_limit.
// The main thread's event loop never copies pages or syncs the database; at worst a write of its
// waits for step 4 (see DESIGN, "Two threads").

import type Database from 'better-sqlite3';
import type { Clock, Timer } from '../../clock.js';
import { WalSync } from './wal-sync.js';
import type { WriteLock } from './write-lock.js';

export interface LockedCheckpointerOptions {
  db: Database.Database;
  /** The database file (its WAL is `${path}-wal`). */
  path: string;
  lock: WriteLock;
  clock: Clock;
  intervalMs: number;
  /** Frames in the WAL past which the checkpoint is finished under the lock, so the log starts over. */
  restartFrames: number;
  onError?: (message: string) => void;
}

export class LockedCheckpointer {
  private readonly walFile: WalSync;
  private readonly dbFile: WalSync;
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: LockedCheckpointerOptions) {
    // (WalSync fdatasyncs whichever file it is given, in the thread pool)
    this.walFile = new WalSync(`${o.path}-wal`);
    this.dbFile = new WalSync(o.path);
    this.arm();
  }

  /** Runs one round, or waits for the one running. */
  private checkpoint(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.running;
    await Promise.all([this.walFile.close(), this.dbFile.close()]);
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(this.o.intervalMs, () => void this.checkpoint().finally(() => this.arm()));
  }

  private async round(): Promise<void> {
    const { db, lock } = this.o;
    try {
      await this.walFile.sync();
      if (this.stopped || !db.open) return;
      let pass = passive(db);
      if (pass.log < this.o.restartFrames) return;
      // Each pass leaves what was written while it copied. The pages copied reach the disk in the
      // pool, then another pass takes what came meanwhile, until what is left is short.
      for (let i = 0; i < MAX_PASSES && pass.log - pass.checkpointed > SHORT_TAIL_FRAMES; i++) {
        await this.walFile.sync();
        await this.dbFile.sync();
        if (this.stopped || !db.open) return;
        pass = passive(db);
      }
      await this.dbFile.sync();
      if (this.stopped || !db.open) return;
      lock.run(() => passive(db));
    } catch (err) {
      // busy (a reader's snapshot, the other connection's checkpoint) or closing: the next round tries again
      this.o.onError?.((err as Error).message);
    }
  }
}

/** Passes without the lock before the last one under it, at most. */
const MAX_PASSES = 4;
/** Frames left for the pass under the lock: a few of the other thread's commits. */
const SHORT_TAIL_FRAMES = 256;

/** A PASSIVE checkpoint: the frames in the log, and how many of them are in the database now. */
function passive(db: Database.Database): { log: number; checkpointed: number } {
  return (db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[])[0] ?? { log: 0, checkpointed: 0 };
}
