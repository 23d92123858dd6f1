// Reads the few series the overview charts from /metrics (Prometheus text) and turns counters into
// per-second rates between two scrapes.

export interface Scrape {
  at: number;
  success: number;
  failure: number;
  queueDepth: number;
  inFlight: number;
  lagSum: number;
  lagCount: number;
  dlq: number;
}

export interface Point {
  at: number;
  deliveriesPerS: number;
  failuresPerS: number;
  queueDepth: number;
  inFlight: number;
  /** Mean lateness of the attempts started since the previous scrape, ms. */
  latenessMs: number;
  dlq: number;
}

/** Sums every sample of a metric whose labels contain `match` (all samples when match is ''). */
function sum(lines: string[], name: string, match = ''): number {
  let total = 0;
  for (const line of lines) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (match && !rest.includes(match)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

export function parseScrape(text: string, at: number): Scrape {
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
  const attempts = sum(lines, 'pulsegate_attempts_total');
  const success = sum(lines, 'pulsegate_attempts_total', 'outcome="success"');
  return {
    at,
    success,
    failure: attempts - success,
    queueDepth: sum(lines, 'pulsegate_queue_depth'),
    inFlight: sum(lines, 'pulsegate_jobs_in_flight'),
    lagSum: sum(lines, 'pulsegate_scheduler_lag_seconds_sum'),
    lagCount: sum(lines, 'pulsegate_scheduler_lag_seconds_count'),
    dlq: sum(lines, 'pulsegate_jobs_by_status', 'status="failed"'),
  };
}

export function between(a: Scrape, b: Scrape): Point {
  const dt = Math.max(0.001, (b.at - a.at) / 1000);
  const dc = b.lagCount - a.lagCount;
  return {
    at: b.at,
    deliveriesPerS: Math.max(0, b.success - a.success) / dt,
    failuresPerS: Math.max(0, b.failure - a.failure) / dt,
    queueDepth: b.queueDepth,
    inFlight: b.inFlight,
    latenessMs: dc > 0 ? ((b.lagSum - a.lagSum) / dc) * 1000 : 0,
    dlq: b.dlq,
  };
}
