// Overview: deliveries, failures, queue depth and lateness over the last minutes, from /metrics every
// 2 s, and the open circuits when the service reports destinations.
import { useEffect, useState } from 'preact/hooks';
import { between, parseScrape, type Point, type Scrape } from '../metrics.js';
import { Chart } from '../chart.js';
import { unwrap, type Session } from '../api.js';

const EVERY_MS = 2000;
const KEEP = 150;

export function Overview({ session }: { session: Session }) {
  const [points, setPoints] = useState<Point[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [circuits, setCircuits] = useState<{ origin: string; tenant_id: string; state: string }[] | null>(null);

  useEffect(() => {
    let last: Scrape | null = null;
    let stopped = false;
    const tick = async () => {
      try {
        const res = await fetch('/metrics');
        if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
        const s = parseScrape(await res.text(), Date.now());
        if (last) {
          const p = between(last, s);
          setPoints((prev) => [...prev.slice(-(KEEP - 1)), p]);
        }
        last = s;
        setError(null);
      } catch (err) {
        setError((err as Error).message);
      }
      if (!stopped) timer = setTimeout(tick, EVERY_MS);
    };
    let timer = setTimeout(tick, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  useEffect(() => {
    session.client
      .GET('/v1/destinations', { params: { query: { circuit: 'open', limit: 100 } } })
      .then((r) => setCircuits(unwrap(r).data.map((d) => ({ origin: d.origin, tenant_id: d.tenant_id, state: d.circuit.state }))))
      .catch(() => setCircuits(null));
  }, [session]);

  const last = points[points.length - 1];
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="charts">
        <Chart title="Deliveries" unit="/s" values={points.map((p) => p.deliveriesPerS)} second={points.map((p) => p.failuresPerS)} />
        <Chart title="Failed attempts" unit="/s" values={points.map((p) => p.failuresPerS)} />
        <Chart title="Queue depth" unit="jobs" values={points.map((p) => p.queueDepth)} />
        <Chart title="Lateness" unit="ms" values={points.map((p) => p.latenessMs)} />
      </div>
      <p>
        In flight: <strong>{last ? last.inFlight : '–'}</strong> · Dead-letter queue: <strong>{last ? last.dlq : '–'}</strong> jobs
      </p>
      {circuits !== null && (
        <>
          <h2>Open circuits</h2>
          {circuits.length === 0 ? (
            <p>None.</p>
          ) : (
            <ul>
              {circuits.map((c) => (
                <li key={`${c.tenant_id} ${c.origin}`}>
                  {c.tenant_id} → {c.origin}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
