// Writes jobs straight into a PulseGate database through its own Store driver, before the service
// starts: the delivery scenario begins with work already stored. Also counts what a run committed.

import type { CreateJobBody } from '../../src/api/schemas.js';

const DEDUPE_WINDOW_MS = 3_600_000;
const IDEMPOTENCY_TTL_MS = 86_400_000;

/**
 * Stores n jobs due now in ONE transaction, so a running service that polls the database sees all
 * of them at once or none.
 */
export async function seedDueJobs(dbPath: string, n: number, receiverUrl: string): Promise<void> {
  const { openSqliteStore } = await import('../../src/store/sqlite/sqlite-store.js');
  const { toNewJob } = await import('../../src/api/new-job.js');
  const store = openSqliteStore({ path: dbPath, synchronous: 'NORMAL' });
  try {
    await store.migrate();
    const now = Date.now();
    const batch = [];
    for (let i = 0; i < n; i++) {
      const payload = { t: now, i, order: { id: `ord_${i}`, amount_cents: 1299, currency: 'EUR', status: 'paid', customer: 'cus_4f9a2c' } };
      const body: CreateJobBody = {
        tenant_id: 'bench',
        type: 'order.paid',
        payload,
        destination: { url: receiverUrl, method: 'POST', timeout_ms: 10_000, headers: {} },
      };
      batch.push(toNewJob(body, JSON.stringify(payload), null, now, { dedupeWindowMs: DEDUPE_WINDOW_MS, idempotencyTtlMs: IDEMPOTENCY_TTL_MS }));
    }
    await store.createJobs(batch, now);
  } finally {
    await store.close();
  }
}

/** Jobs stored in a (closed) PulseGate database, whatever their status. */
export async function countJobs(dbPath: string): Promise<number> {
  const { openSqliteStore } = await import('../../src/store/sqlite/sqlite-store.js');
  const store = openSqliteStore({ path: dbPath });
  try {
    const counts = await store.countByStatus();
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await store.close();
  }
}
