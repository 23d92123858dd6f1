/*
 * Ordering keys: jobs of one (tenant, ordering_key) are delivered one at a time, in the order the
 * key received them.
 *
 * The key's line is its non-terminal jobs (scheduled | queued | running | retrying) by
 * `ordering_seq`, a number the store gives each job under the key's lock when it joins the line
 * (at create, and again at an operator retry, which puts the job at the back). The first of the
 * line is the key's head: it alone may be claimed, and it is due at its own time (run_at, or
 * next_attempt_at while it waits to retry). Every other job of the line waits for its key:
 *
 *   create, key idle ──────────────────────────────▶ head (due at run_at)
 *   create, key busy ──────────────────────────────▶ waiting (due_at = WAITING_FOR_KEY)
 *   head ──(retryable error)──▶ head, due at next_attempt_at   (its retries hold the key)
 *   head ──(success | dead-letter | cancel)──▶ ended; the next in line becomes head, due at its time
 *   waiting ──(cancel)──▶ ended; the head is unchanged
 *   failed | cancelled ──(operator retry)──▶ back of the line: head when the key is idle, else waiting
 *
 * A waiting job is stored with due_at = WAITING_FOR_KEY, past any real time: the claim's range scan
 * (due_at <= now) and the next-due lookup stop before it, so a backlog behind a key costs claims of
 * other jobs nothing. The head takes its real due time back in the same transaction as the end of
 * the job before it.
 */

/** due_at of a job waiting behind the head of its ordering key (2^53 - 1: after every real time). */
export const WAITING_FOR_KEY = Number.MAX_SAFE_INTEGER;

/** A due time from the store, or null when it only says "waits for its key". */
export function realDueAt(dueAt: number | null | undefined): number | null {
  return dueAt === null || dueAt === undefined || dueAt >= WAITING_FOR_KEY ? null : dueAt;
}

/** An ordering key as the stores lock and settle it. */
export interface OrderingKey {
  tenant_id: string;
  key: string;
}

/** Distinct keys, sorted: locks taken in this order never deadlock each other. */
export function distinctKeys(keys: Iterable<OrderingKey>): OrderingKey[] {
  const seen = new Map<string, OrderingKey>();
  for (const k of keys) seen.set(`${k.tenant_id}\u0000${k.key}`, k);
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, k]) => k);
}
