// Ordering keys for the SQLite driver (the rules are in domain/ordering.ts). Every function runs
// inside the caller's write transaction, which on SQLite is the only writer: no lock of its own.
// The statements seek `jobs_ordering` (tenant_id, ordering_key, ordering_seq) over the unfinished
// jobs of keyed lines only, so jobs without a key never enter it.

import type Database from 'better-sqlite3';
import { distinctKeys, WAITING_FOR_KEY, type OrderingKey } from '../../domain/ordering.js';
import type { LinePlace } from './rows.js';

type Named = Record<string, unknown>;

// verbatim the predicate of jobs_ordering (SQLite matches partial indexes by text)
const UNFINISHED = `status IN ('scheduled','queued','running','retrying')`;

export class OrderingLines {
  private readonly tail: Database.Statement<Named, number>;
  private readonly settleOne: Database.Statement<Named>;
  private readonly requeueOne: Database.Statement<Named>;

  constructor(db: Database.Database) {
    this.tail = db
      .prepare<Named, number>(`
        SELECT ordering_seq FROM jobs INDEXED BY jobs_ordering
        WHERE tenant_id = @tenant_id AND ordering_key = @key AND ${UNFINISHED} AND id <> @except
        ORDER BY ordering_seq DESC LIMIT 1`)
      .pluck();
    // the first of the line takes its own due time back, if it was waiting
    this.settleOne = db.prepare<Named>(`
      UPDATE jobs SET due_at = coalesce(next_attempt_at, run_at), updated_at = @now
      WHERE id = (
          SELECT id FROM jobs INDEXED BY jobs_ordering
          WHERE tenant_id = @tenant_id AND ordering_key = @key AND ${UNFINISHED}
          ORDER BY ordering_seq LIMIT 1)
        AND due_at = ${WAITING_FOR_KEY}`);
    this.requeueOne = db.prepare<Named>(`
      UPDATE jobs SET ordering_seq = @seq, due_at = CASE WHEN @waiting THEN ${WAITING_FOR_KEY} ELSE due_at END
      WHERE id = @id`);
  }

  /** Where a new job of `key` joins the line: behind its last unfinished job, if any. */
  place(key: OrderingKey, except = ''): LinePlace {
    const last = this.tail.get({ tenant_id: key.tenant_id, key: key.key, except });
    return { seq: (last ?? 0) + 1, waiting: last !== undefined };
  }

  /** A job back from failed or cancelled (operator retry) goes to the back of its key's line. */
  requeue(id: string, key: OrderingKey): void {
    const place = this.place(key, id);
    this.requeueOne.run({ id, seq: place.seq, waiting: place.waiting ? 1 : 0 });
  }

  /** After jobs of these keys ended: each line's first job, if it was waiting, becomes due. */
  settle(keys: Iterable<OrderingKey>, now: number): void {
    for (const k of distinctKeys(keys)) this.settleOne.run({ tenant_id: k.tenant_id, key: k.key, now });
  }
}
