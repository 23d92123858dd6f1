// The PulseGate console: asks for an API key when the API wants one (kept for this tab only), then
// routes by the URL's hash between the views. Served at /console by the service itself.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { CallError, describeError, saveKey, savedKey, session, unwrap, type Session } from './api.js';
import { DestinationsView } from './views/destinations.js';
import { DlqView } from './views/dlq.js';
import { JobView } from './views/job.js';
import { JobsView } from './views/jobs.js';
import { Overview } from './views/overview.js';
import { SchedulesView } from './views/schedules.js';
import './style.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/overview');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/overview');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Login({ onKey, error }: { onKey: (key: string) => void; error: string | null }) {
  const [key, setKey] = useState('');
  return (
    <main class="login">
      <h1>PulseGate</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) onKey(key.trim());
        }}
      >
        <label>
          API key <input type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} autofocus />
        </label>
        <button type="submit">Sign in</button>
        <p class="hint">The key stays in this tab (session storage) and is sent only as an Authorization header.</p>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

function App() {
  const [current, setCurrent] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(true);
  const hash = useHash();

  async function tryKey(key: string | null) {
    const s = session(key);
    try {
      unwrap(await s.client.GET('/v1/jobs', { params: { query: { limit: 1 } } }));
      saveKey(key);
      setCurrent(s);
      setError(null);
    } catch (err) {
      saveKey(null);
      setCurrent(null);
      // no key given and the API wants one: just ask, without an error
      setError(key === null && err instanceof CallError && err.status === 401 ? null : describeError(err));
    } finally {
      setChecking(false);
    }
  }

  useEffect(() => {
    void tryKey(savedKey());
  }, []);

  if (checking) return <p>Loading…</p>;
  if (!current) return <Login onKey={(k) => void tryKey(k)} error={error} />;

  const [, view = 'overview', id] = hash.split('/');
  const link = (to: string, label: string) => (
    <a href={`#/${to}`} aria-current={view === to ? 'page' : undefined}>{label}</a>
  );
  return (
    <>
      <header>
        <strong>PulseGate</strong>
        <nav aria-label="views">
          {link('overview', 'Overview')}
          {link('jobs', 'Jobs')}
          {link('dlq', 'Dead-letter queue')}
          {link('destinations', 'Destinations')}
          {link('schedules', 'Schedules')}
        </nav>
        {current.key && (
          <button type="button" onClick={() => { saveKey(null); setCurrent(null); }}>Sign out</button>
        )}
      </header>
      <main>
        {view === 'overview' && <Overview session={current} />}
        {view === 'jobs' && !id && <JobsView session={current} />}
        {view === 'jobs' && id && <JobView session={current} id={decodeURIComponent(id)} />}
        {view === 'dlq' && <DlqView session={current} />}
        {view === 'destinations' && <DestinationsView session={current} />}
        {view === 'schedules' && <SchedulesView session={current} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
