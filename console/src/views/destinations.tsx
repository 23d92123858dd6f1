// Destinations: each (tenant, origin) lane this process knows, with its circuit, attempts in flight,
// jobs waiting and last error, and a button that closes a circuit by hand.
import { useEffect, useState } from 'preact/hooks';
import { describeError, unwrap, type Session } from '../api.js';
import type { Destination } from '../types.js';

export function DestinationsView({ session }: { session: Session }) {
  const [list, setList] = useState<Destination[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [openOnly, setOpenOnly] = useState(false);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    session.client
      .GET('/v1/destinations', { params: { query: openOnly ? { circuit: 'open', limit: 100 } : { limit: 100 } } })
      .then((r) => {
        if (cancelled) return;
        setList((unwrap(r) as { data: Destination[] }).data);
        setError(null);
      })
      .catch((err) => !cancelled && setError(describeError(err)));
    const t = setTimeout(() => setTick((n) => n + 1), 3000);
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  }, [session, openOnly, tick]);

  async function reset(d: Destination) {
    try {
      const r = unwrap(await session.client.POST('/v1/destinations/{id}/reset', { params: { path: { id: d.id } } })) as Destination;
      setNotice(`Circuit of ${d.tenant_id} → ${d.origin} is ${r.circuit.state}`);
      setError(null);
      setTick((n) => n + 1);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <section aria-labelledby="dest-title">
      <h1 id="dest-title">Destinations</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label class="inline">
          <input type="checkbox" checked={openOnly} onChange={(e) => setOpenOnly(e.currentTarget.checked)} /> Open circuits only
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      {list.length === 0 ? (
        <p>No destinations yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col">Origin</th>
              <th scope="col">Circuit</th>
              <th scope="col">Failures in a row</th>
              <th scope="col">In flight</th>
              <th scope="col">Waiting</th>
              <th scope="col">Rate limit</th>
              <th scope="col">Last error</th>
              <th scope="col"><span class="sr">actions</span></th>
            </tr>
          </thead>
          <tbody>
            {list.map((d) => (
              <tr key={d.id} data-testid={`destination ${d.tenant_id} ${d.origin}`}>
                <td>{d.tenant_id}</td>
                <td>{d.origin}</td>
                <td>
                  <span class={`status circuit-${d.circuit.state}`}>{d.circuit.state.replace('_', '-')}</span>
                  {d.circuit.probe_at && <small> probe {new Date(d.circuit.probe_at).toLocaleTimeString()}</small>}
                </td>
                <td>{d.circuit.consecutive_failures}</td>
                <td>{d.in_flight} / {d.max_in_flight}</td>
                <td>{d.waiting}</td>
                <td>{d.rate_limit ? `${d.rate_limit.rps}/s, burst ${d.rate_limit.burst}` : 'none'}</td>
                <td class="clip">{d.last_error ? `${d.last_error}${d.last_error_at ? ` (${new Date(d.last_error_at).toLocaleTimeString()})` : ''}` : ''}</td>
                <td>
                  <button type="button" disabled={d.circuit.state === 'closed'} onClick={() => reset(d)} aria-label={`Reset circuit of ${d.tenant_id} ${d.origin}`}>
                    Reset
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
