// Schedules: each recurring job with its cron expression, time zone, status and next tick, newest
// first, with pause and resume.
import { useEffect, useState } from 'preact/hooks';
import { describeError, unwrap, type Session } from '../api.js';
import type { Schedule } from '../types.js';

const when = (t: string | null) => (t ? new Date(t).toLocaleString() : '');

export function SchedulesView({ session }: { session: Session }) {
  const [list, setList] = useState<Schedule[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [status, setStatus] = useState<'' | 'active' | 'paused' | 'ended'>('');
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    session.client
      .GET('/v1/schedules', { params: { query: status ? { status, limit: 100 } : { limit: 100 } } })
      .then((r) => {
        if (cancelled) return;
        const page = unwrap(r) as { data: Schedule[]; next_cursor: string | null };
        setList(page.data);
        setCursor(page.next_cursor);
        setError(null);
      })
      .catch((err) => !cancelled && setError(describeError(err)));
    const t = setTimeout(() => setTick((n) => n + 1), 5000);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [session, status, tick]);

  async function change(s: Schedule, action: 'pause' | 'resume') {
    try {
      const path = action === 'pause' ? '/v1/schedules/{id}/pause' : '/v1/schedules/{id}/resume';
      const r = unwrap(await session.client.POST(path, { params: { path: { id: s.id } } })) as Schedule;
      setNotice(`Schedule ${s.id} is ${r.status}`);
      setError(null);
      setTick((n) => n + 1);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as typeof status)}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="paused">paused</option>
            <option value="ended">ended</option>
          </select>
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      {list.length === 0 ? (
        <p>No schedules.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col">Cron</th>
              <th scope="col">Time zone</th>
              <th scope="col">Job type</th>
              <th scope="col">Status</th>
              <th scope="col">Next tick</th>
              <th scope="col">Last tick</th>
              <th scope="col">Last job</th>
              <th scope="col"><span class="sr">actions</span></th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.id} data-testid={`schedule ${s.id}`}>
                <td>{s.tenant_id}</td>
                <td><code>{s.cron}</code></td>
                <td>{s.time_zone}</td>
                <td>{String(s.job.type ?? '')}</td>
                <td><span class={`status schedule-${s.status}`}>{s.status}</span></td>
                <td>{when(s.next_tick_at)}</td>
                <td>{when(s.last_tick_at)}</td>
                <td>{s.last_job_id && <a href={`#/jobs/${encodeURIComponent(s.last_job_id)}`}>{s.last_job_id.slice(0, 13)}…</a>}</td>
                <td>
                  {s.status === 'active' && <button type="button" onClick={() => change(s, 'pause')} aria-label={`Pause schedule ${s.id}`}>Pause</button>}
                  {s.status === 'paused' && <button type="button" onClick={() => change(s, 'resume')} aria-label={`Resume schedule ${s.id}`}>Resume</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && <p class="hint">Showing the newest 100; the CLI lists them all (pulsegate schedules list --all).</p>}
    </section>
  );
}
