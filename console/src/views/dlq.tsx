// The dead-letter queue: failed jobs with the API's filters, select many, and retry them.
import { useEffect, useState } from 'preact/hooks';
import { describeError, unwrap, type Session } from '../api.js';
import type { Job } from '../types.js';
import { JobTable } from './jobs.js';

export function DlqView({ session }: { session: Session }) {
  const [tenant, setTenant] = useState('');
  const [jobs, setJobs] = useState<Job[]>([]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [matching, setMatching] = useState<{ jobs: number; destinations: { origin: string; jobs: number }[]; truncated: boolean } | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    session.client
      .GET('/v1/dlq', { params: { query: { ...(tenant ? { tenant_id: tenant } : {}), limit: 200 } } })
      .then((r) => {
        if (cancelled) return;
        setJobs((unwrap(r) as { data: Job[] }).data);
        setError(null);
      })
      .catch((err) => !cancelled && setError(describeError(err)));
    return () => {
      cancelled = true;
    };
  }, [session, tenant, tick]);

  const chosen = jobs.filter((j) => selected.has(j.id));
  const origins = [...new Set(chosen.map((j) => new URL(j.destination.url).origin))];

  async function replay() {
    setConfirming(false);
    let ok = 0;
    const failures: string[] = [];
    for (const j of chosen) {
      try {
        unwrap(await session.client.POST('/v1/jobs/{id}/retry', { params: { path: { id: j.id } } }));
        ok++;
      } catch (err) {
        failures.push(`${j.id}: ${describeError(err)}`);
      }
    }
    setNotice(`Replayed ${ok} job${ok === 1 ? '' : 's'}`);
    setError(failures.length ? failures.slice(0, 5).join('; ') : null);
    setSelected(new Set());
    setTick((n) => n + 1);
  }

  const filter = () => (tenant ? { tenant_id: tenant } : {});

  /** Counts what "all matching" would replay (a dry run), for the confirmation. */
  async function countMatching() {
    try {
      const r = unwrap(await session.client.POST('/v1/dlq/retry', { body: { ...filter(), dry_run: true } }));
      setMatching({ jobs: r.jobs, destinations: r.destinations, truncated: r.destinations_truncated });
      setError(null);
    } catch (err) {
      setError(describeError(err));
    }
  }

  async function replayMatching() {
    setMatching(null);
    try {
      // one key per confirmation: a retried request (a double click, a flaky network) replays nothing twice
      const key = crypto.randomUUID();
      const r = unwrap(await session.client.POST('/v1/dlq/retry', { body: { ...filter(), dry_run: false }, params: { header: { 'idempotency-key': key } } }));
      setNotice(`Replayed ${r.jobs} job${r.jobs === 1 ? '' : 's'}`);
      setError(null);
      setSelected(new Set());
      setTick((n) => n + 1);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="dlq-title">
      <h1 id="dlq-title">Dead-letter queue</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Tenant <input value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={() => setSelected(new Set(jobs.map((j) => j.id)))} disabled={jobs.length === 0}>Select all shown</button>
        <button type="button" onClick={() => setSelected(new Set())} disabled={selected.size === 0}>Clear</button>
        <button type="button" onClick={() => setConfirming(true)} disabled={selected.size === 0}>Replay selected</button>
        <button type="button" onClick={countMatching}>Replay all matching…</button>
      </form>
      {matching && (
        <div class="confirm" role="dialog" aria-labelledby="confirm-all-text">
          <p id="confirm-all-text">
            Replay all {matching.jobs} failed job{matching.jobs === 1 ? '' : 's'}{tenant ? ` of tenant ${tenant}` : ''}? Each gets a fresh attempt budget and goes out at its destination's rate limit.
          </p>
          <ul>
            {matching.destinations.map((d) => (
              <li key={d.origin}>{d.origin}: {d.jobs}</li>
            ))}
            {matching.truncated && <li>and more destinations</li>}
          </ul>
          <button type="button" onClick={replayMatching} disabled={matching.jobs === 0}>Replay {matching.jobs}</button>
          <button type="button" onClick={() => setMatching(null)}>Cancel</button>
        </div>
      )}
      {confirming && (
        <div class="confirm" role="dialog" aria-labelledby="confirm-text">
          <p id="confirm-text">
            Replay {chosen.length} job{chosen.length === 1 ? '' : 's'} to {origins.join(', ')}? Each gets a fresh attempt budget and goes out at its destination's rate limit.
          </p>
          <button type="button" onClick={replay}>Replay {chosen.length}</button>
          <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <JobTable jobs={jobs} selected={selected} onSelect={(id, on) => {
        const next = new Set(selected);
        if (on) next.add(id);
        else next.delete(id);
        setSelected(next);
      }} />
    </section>
  );
}
