import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WAIT_MS, RateLimiter, rateLimitKey } from '../../src/engine/rate-limiter.js';

describe('rate limiter', () => {
  it('lets a burst through, then answers how long until the next token', () => {
    const rl = new RateLimiter();
    const lim = { rps: 10, burst: 5 };
    for (let i = 0; i < 5; i++) assert.equal(rl.take('k', lim, 0), 0);
    assert.equal(rl.take('k', lim, 0), 100);
    assert.equal(rl.take('k', lim, 40), 60);
    assert.equal(rl.take('k', lim, 100), 0);
    assert.equal(rl.take('k', lim, 100), 100);
  });

  it('never holds more than burst tokens however long it idles', () => {
    const rl = new RateLimiter();
    const lim = { rps: 100, burst: 3 };
    rl.take('k', lim, 0);
    for (let i = 0; i < 3; i++) assert.equal(rl.take('k', lim, 1_000_000), 0);
    assert.ok(rl.take('k', lim, 1_000_000) > 0);
  });

  it('keeps separate buckets per key', () => {
    const rl = new RateLimiter();
    const lim = { rps: 1, burst: 1 };
    assert.equal(rl.take('a', lim, 0), 0);
    assert.ok(rl.take('a', lim, 0) > 0);
    assert.equal(rl.take('b', lim, 0), 0);
  });

  it('follows the latest setting for a key', () => {
    const rl = new RateLimiter();
    assert.equal(rl.take('k', { rps: 1, burst: 1 }, 0), 0);
    assert.equal(rl.take('k', { rps: 1, burst: 1 }, 0), 1000);
    assert.equal(rl.take('k', { rps: 1000, burst: 1 }, 0), 1);
  });

  it('evicts full buckets when it reaches its size bound', () => {
    const rl = new RateLimiter(10);
    for (let i = 0; i < 50; i++) rl.take(`k${i}`, { rps: 1000, burst: 2 }, i * 10);
    assert.ok(rl.size <= 11, `size ${rl.size}`);
  });

  it('keys by tenant and origin, not path', () => {
    assert.equal(rateLimitKey('t', 'https://a.example/x?y'), rateLimitKey('t', 'https://a.example/z'));
    assert.notEqual(rateLimitKey('t', 'https://a.example/'), rateLimitKey('u', 'https://a.example/'));
    assert.notEqual(rateLimitKey('t', 'https://a.example/'), rateLimitKey('t', 'https://a.example:8443/'));
  });

  it('answers a finite wait however small the rate', () => {
    const rl = new RateLimiter();
    const lim = { rps: 1e-300, burst: 1 };
    assert.equal(rl.take('k', lim, 0), 0);
    const wait = rl.take('k', lim, 0);
    assert.ok(Number.isFinite(wait) && wait <= MAX_WAIT_MS, String(wait));
  });
});
