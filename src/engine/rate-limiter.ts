// Token buckets per (tenant, destination origin). The limiter never blocks: it answers
// "go now" (0) or "a token is free in N ms", and the caller decides what to do meanwhile.
// Configuration follows the latest job seen for a key (the newest rate_limit wins).

import type { RateLimit } from '../domain/job.js';
import { boundedWait, MIN_RPS } from '../domain/time.js';

interface Bucket {
  rps: number;
  burst: number;
  tokens: number;
  refilledAt: number;
}

export function rateLimitKey(tenantId: string, url: string): string {
  return `${tenantId} ${new URL(url).origin}`;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxBuckets = 100_000) {}

  private bucket(key: string, asked: RateLimit, now: number): Bucket {
    // a rate below the API's floor (a row written before the floor existed) runs at the floor
    const limit = asked.rps >= MIN_RPS ? asked : { rps: MIN_RPS, burst: asked.burst };
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxBuckets) this.evictFull(now);
      b = { rps: limit.rps, burst: limit.burst, tokens: limit.burst, refilledAt: now };
      this.buckets.set(key, b);
      return b;
    }
    this.refill(b, now);
    if (b.rps !== limit.rps || b.burst !== limit.burst) {
      b.rps = limit.rps;
      b.burst = limit.burst;
      b.tokens = Math.min(b.tokens, b.burst);
    }
    return b;
  }

  private refill(b: Bucket, now: number): void {
    if (now > b.refilledAt) {
      b.tokens = Math.min(b.burst, b.tokens + ((now - b.refilledAt) * b.rps) / 1000);
      b.refilledAt = now;
    }
  }

  /** Takes a token if one is free (returns 0), else returns ms until one is, without taking it. */
  take(key: string, limit: RateLimit, now: number): number {
    const b = this.bucket(key, limit, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, boundedWait(((1 - b.tokens) * 1000) / b.rps));
  }

  /** Buckets that are full carry no state worth keeping. */
  private evictFull(now: number): void {
    for (const [k, b] of this.buckets) {
      this.refill(b, now);
      if (b.tokens >= b.burst) this.buckets.delete(k);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
