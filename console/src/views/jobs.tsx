// Jobs: the list with the API's filters and cursor paging, refreshed live on request.
import { useEffect, useState } from 'preact/hooks';
import { describeError, unwrap, type Session } from '../api.js';
import type { Job } from '../types.js';

const STATUSES = ['', 'scheduled', 'queued', 'running', 'retrying', 'success', 'failed', 'cancelled'] as const;

export function JobsView({ session }: { session: Session }) {
  const [tenant, setTenant] = useState('');
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('');
  const [type, setType] = useState('');
  const [orderingKey, setOrderingKey] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const [page, setPage] = useState<{ data: Job[]; next_cursor: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    const query = {
      ...(tenant ? { tenant_id: tenant } : {}),
      ...(status ? { status } : {}),
      ...(type ? { type } : {}),
      ...(orderingKey ? { ordering_key: orderingKey } : {}),
      ...(cursor ? { cursor } : {}),
      limit: 50,
    };
    session.client
      .GET('/v1/jobs', { params: { query } })
      .then((r) => {
        if (cancelled) return;
        setPage(unwrap(r) as { data: Job[]; next_cursor: string | null });
        setError(null);
      })
      .catch((err) => !cancelled && setError(describeError(err)));
    return () => {
      cancelled = true;
    };
  }, [session, tenant, status, type, orderingKey, cursor, tick]);

  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => setTick((n) => n + 1), 3000);
    return () => clearInterval(t);
  }, [live]);

  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Tenant <input value={tenant} onInput={(e) => { setTenant(e.currentTarget.value); setCursor(null); }} />
        </label>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => { setStatus(e.currentTarget.value as (typeof STATUSES)[number]); setCursor(null); }}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>{s || 'any'}</option>
            ))}
          </select>
        </label>
        <label>
          Type <input value={type} onInput={(e) => { setType(e.currentTarget.value); setCursor(null); }} />
        </label>
        <label>
          Ordering key <input value={orderingKey} onInput={(e) => { setOrderingKey(e.currentTarget.value); setCursor(null); }} />
        </label>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <JobTable jobs={page?.data ?? []} />
      <nav class="paging" aria-label="pages">
        <button type="button" disabled={cursor === null} onClick={() => setCursor(null)}>First page</button>
        <button type="button" disabled={!page?.next_cursor} onClick={() => setCursor(page?.next_cursor ?? null)}>Next page</button>
      </nav>
    </section>
  );
}

export function JobTable({ jobs, selected, onSelect }: { jobs: Job[]; selected?: Set<string>; onSelect?: (id: string, on: boolean) => void }) {
  if (jobs.length === 0) return <p>No jobs.</p>;
  return (
    <table>
      <thead>
        <tr>
          {onSelect && <th scope="col"><span class="sr">select</span></th>}
          <th scope="col">Job</th>
          <th scope="col">Tenant</th>
          <th scope="col">Type</th>
          <th scope="col">Status</th>
          <th scope="col">Attempts</th>
          <th scope="col">Last error</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((j) => (
          <tr key={j.id}>
            {onSelect && (
              <td>
                <input type="checkbox" aria-label={`select ${j.id}`} checked={selected?.has(j.id) ?? false} onChange={(e) => onSelect(j.id, e.currentTarget.checked)} />
              </td>
            )}
            <td><a href={`#/jobs/${j.id}`}>{j.id}</a></td>
            <td>{j.tenant_id}</td>
            <td>{j.type}</td>
            <td><span class={`status ${j.status}`}>{j.status}</span></td>
            <td>{j.attempts}</td>
            <td class="clip">{j.last_error ?? ''}</td>
            <td>{new Date(j.created_at).toLocaleString()}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
