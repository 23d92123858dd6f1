// One job: its fields, the payload and headers it is sent with, its attempts as a timeline, and the
// cancel and retry commands. Everything a job or a receiver wrote is shown as text, never as HTML.
import { useEffect, useState } from 'preact/hooks';
import { describeError, unwrap, type Session } from '../api.js';
import type { Attempt, Job } from '../types.js';

function pretty(payload: unknown): string {
  return JSON.stringify(payload, null, 2);
}

export function JobView({ session, id }: { session: Session; id: string }) {
  const [job, setJob] = useState<Job | null>(null);
  const [attempts, setAttempts] = useState<Attempt[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    Promise.all([
      session.client.GET('/v1/jobs/{id}', { params: { path: { id } } }).then(unwrap),
      session.client.GET('/v1/jobs/{id}/attempts', { params: { path: { id } } }).then(unwrap),
    ])
      .then(([j, a]) => {
        if (cancelled) return;
        setJob(j as Job);
        setAttempts((a as { data: Attempt[] }).data);
        setError(null);
      })
      .catch((err) => !cancelled && setError(describeError(err)));
    return () => {
      cancelled = true;
    };
  }, [session, id, tick]);

  async function command(which: 'cancel' | 'retry') {
    try {
      const path = which === 'cancel' ? '/v1/jobs/{id}/cancel' : '/v1/jobs/{id}/retry';
      const j = unwrap(await session.client.POST(path, { params: { path: { id } } })) as Job;
      setJob(j);
      setNotice(`${which === 'cancel' ? 'Cancelled' : 'Queued again'}: status ${j.status}`);
      setError(null);
      setTimeout(() => setTick((n) => n + 1), 1000);
    } catch (err) {
      setError(describeError(err));
    }
  }

  if (!job) return <section>{error ? <p class="error" role="alert">{error}</p> : <p>Loading…</p>}</section>;
  const sent: [string, string][] = [
    ['content-type', 'application/json'],
    ['user-agent', 'PulseGate/<version>'],
    ...Object.entries(job.destination.headers).map(([k, v]) => [k.toLowerCase(), v] as [string, string]),
    ['webhook-id', job.id],
    ['webhook-timestamp', '<unix seconds of each attempt>'],
    ['webhook-signature', '<when a signing secret applies>'],
    ...(job.trace_id
      ? [['traceparent', `00-${job.trace_id}-<a new span id per attempt>-<flags>`] as [string, string]]
      : []),
  ];
  const headers = new Map(sent);
  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">Job {job.id}</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {notice && <p class="notice" role="status">{notice}</p>}
      <div class="actions">
        <button type="button" onClick={() => command('cancel')} disabled={['success', 'failed', 'cancelled'].includes(job.status)}>Cancel</button>
        <button type="button" onClick={() => command('retry')} disabled={!['failed', 'cancelled'].includes(job.status)}>Retry</button>
        <button type="button" onClick={() => setTick((n) => n + 1)}>Refresh</button>
      </div>
      <dl class="fields">
        <dt>Status</dt><dd><span class={`status ${job.status}`} data-testid="job-status">{job.status}</span></dd>
        <dt>Tenant</dt><dd>{job.tenant_id}</dd>
        <dt>Type</dt><dd>{job.type}</dd>
        <dt>Destination</dt><dd>{job.destination.method} {job.destination.url}</dd>
        <dt>Attempts</dt><dd>{job.attempts} of {job.retry.max_attempts}</dd>
        <dt>Next attempt</dt><dd>{job.next_attempt_at ? new Date(job.next_attempt_at).toLocaleString() : '–'}</dd>
        <dt>Rate limit</dt><dd>{job.rate_limit ? `${job.rate_limit.rps}/s, burst ${job.rate_limit.burst}` : 'none'}</dd>
        <dt>Created</dt><dd>{new Date(job.created_at).toLocaleString()}</dd>
        <dt>Trace</dt><dd data-testid="trace-id">{job.trace_id ?? 'none'}</dd>
      </dl>
      <h2>Payload</h2>
      <pre class="payload" data-testid="payload">{pretty(job.payload)}</pre>
      <h2>Headers sent</h2>
      <table class="headers">
        <tbody>
          {[...headers].map(([k, v]) => (
            <tr key={k}><th scope="row">{k}</th><td>{v}</td></tr>
          ))}
        </tbody>
      </table>
      <h2>Attempts</h2>
      {attempts.length === 0 ? (
        <p>No attempt yet.</p>
      ) : (
        <ol class="timeline" data-testid="attempts">
          {attempts.map((a) => (
            <li key={`${a.attempt}-${a.started_at}`} class={a.outcome}>
              <strong>#{a.attempt}</strong> {new Date(a.started_at).toLocaleString()} · {a.outcome.replace('_', ' ')}
              {a.status_code !== null && <> · HTTP {a.status_code}</>} · {a.duration_ms} ms
              {a.error && <div class="err">{a.error_kind}: {a.error}</div>}
              {a.response_body && <pre class="body">{a.response_body}</pre>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
