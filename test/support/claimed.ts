// A ClaimedJob built in memory, for unit tests of the engine's parts (no store behind it).
import type { RateLimit } from '../../src/domain/job.js';
import type { ClaimedJob } from '../../src/store/store.js';

let seq = 0;

export function claimedJob(o: { tenant?: string; url?: string; rate_limit?: RateLimit | null; run_at?: number; id?: string } = {}): ClaimedJob {
  seq++;
  return {
    id: o.id ?? `job-${String(seq).padStart(6, '0')}`,
    tenant_id: o.tenant ?? 'acme',
    type: 't',
    status: 'queued',
    payload_json: '{}',
    destination: { url: o.url ?? 'http://127.0.0.1:9/hook', method: 'POST', timeout_ms: 1000, headers: {} },
    retry: { max_attempts: 3, base_delay_ms: 0, max_delay_ms: 0 },
    rate_limit: o.rate_limit ?? null,
    run_at: o.run_at ?? 0,
    attempts: 0,
    next_attempt_at: null,
    last_error: null,
    last_status_code: null,
    idempotency_key: null,
    dedupe_key: null,
    ordering_key: null,
    waiting_for_key: false,
    created_at: 0,
    updated_at: 0,
    completed_at: null,
    lease_owner: 'me',
  };
}
