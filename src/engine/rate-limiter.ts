// Token buckets per (tenant, destination origin). A bucket never blocks: it answers "go now" (0) or
// "a token is free in N ms", and the caller decides what to do meanwhile. Configuration follows the
// latest job seen for a key (the newest rate_limit wins). Each lane owns one TokenBucket; the
// RateLimiter keeps a map of them for callers without lanes.

import type { RateLimit } from '../domain/job.js';
import { MIN_RPS } from '../domain/time.js';

/** The longest wait a bucket answers (a day): finite, and well inside a timer's and a column's range. */
export const MAX_WAIT_MS = 86_400_000;

/** The rate a bucket runs at: a rate below the API's floor (a row written before it existed) runs at the floor. */
function floored(rps: number): number {
  return rps >= MIN_RPS ? rps : MIN_RPS;
}

export function rateLimitKey(tenantId: string, url: string): string {
  return `${tenantId} ${new URL(url).origin}`;
}

export class TokenBucket {
  private rps: number;
  private burst: number;
  private tokens: number;
  private refilledAt: number;

  /** Full, or at `level` (the tokens another instance left at level.at, see lane-leases.ts). */
  constructor(limit: Pick<RateLimit, 'rps' | 'burst'>, now: number, level?: { tokens: number; at: number }) {
    this.rps = floored(limit.rps);
    this.burst = limit.burst;
    this.tokens = level ? Math.min(limit.burst, level.tokens) : limit.burst;
    this.refilledAt = level ? Math.min(level.at, now) : now;
  }

  private refill(now: number): void {
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.rps) / 1000);
      this.refilledAt = now;
    }
  }

  /** Takes a token if one is free (returns 0), else returns ms until one is, without taking it. */
  take(limit: Pick<RateLimit, 'rps' | 'burst'>, now: number): number {
    this.refill(now);
    const rps = floored(limit.rps);
    if (this.rps !== rps || this.burst !== limit.burst) {
      this.rps = rps;
      this.burst = limit.burst;
      this.tokens = Math.min(this.tokens, this.burst);
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    // a tiny rps must not make a wait no timer or store column can hold
    return Math.min(MAX_WAIT_MS, Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rps)));
  }

  /** Tokens free now (fractional). */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** A full bucket carries no state worth keeping. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly maxBuckets = 100_000) {}

  /** Takes a token if one is free (returns 0), else returns ms until one is, without taking it. */
  take(key: string, limit: RateLimit, now: number): number {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxBuckets) this.evictFull(now);
      b = new TokenBucket(limit, now);
      this.buckets.set(key, b);
    }
    return b.take(limit, now);
  }

  private evictFull(now: number): void {
    for (const [k, b] of this.buckets) if (b.isFull(now)) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}
