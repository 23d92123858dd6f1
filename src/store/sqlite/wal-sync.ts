// Durability without blocking the event loop.
//
// With synchronous=FULL, SQLite fsyncs the WAL inside every commit, and better-sqlite3 runs that
// fsync on the event loop: about a millisecond each here, during which nothing else runs. Instead
// every transaction commits at NORMAL (the commit frame is written to the WAL, no fsync), and an
// acknowledged write waits for an fdatasync of the WAL file run in libuv's thread pool. That is the
// same fsync FULL would do, after the same commit frame, so the write is as durable when the
// promise resolves; meanwhile the event loop keeps serving, and one fdatasync covers every commit
// made before it started (group commit of the fsync itself). afterRunning goes one step further for
// creates: a commit asked for while an fdatasync runs is made when it ends, right before the next
// one starts, so every create that arrived meanwhile shares one transaction as well as one sync.

import { open, type FileHandle } from 'node:fs/promises';

export class WalSync {
  private handle: FileHandle | null = null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private count = 0;
  private hooks: (() => void)[] = [];

  constructor(private readonly walPath: string) {}

  /** fdatasyncs run so far (for diagnostics and tests). */
  get syncs(): number {
    return this.count;
  }

  /**
   * Resolves once everything committed before this call is on stable storage. A sync already
   * running may have started before the caller's commit, so the caller waits for the next one.
   */
  sync(): Promise<void> {
    if (!this.running) return this.start();
    const then = () => {
      this.next = null;
      const hooks = this.hooks;
      this.hooks = [];
      for (const commit of hooks) commit();
      return this.start();
    };
    this.next ??= this.running.then(then, then);
    return this.next;
  }

  /** An fdatasync is running now. */
  get busy(): boolean {
    return this.running !== null;
  }

  /**
   * Runs `commit` (which must not throw) once the running fdatasync ends, right before the next
   * one starts, or now when none runs; resolves once that next one is done, so once what `commit`
   * committed is on stable storage.
   */
  afterRunning(commit: () => void): Promise<void> {
    if (!this.running) {
      commit();
      return this.start();
    }
    this.hooks.push(commit);
    return this.sync();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.running, this.next]);
    await this.handle?.close();
    this.handle = null;
  }

  private start(): Promise<void> {
    const run = (async () => {
      this.handle ??= await open(this.walPath, 'r');
      await this.handle.datasync();
      this.count++;
    })();
    this.running = run.finally(() => {
      if (this.running === tracked) this.running = null;
    });
    const tracked = this.running;
    return run;
  }
}
