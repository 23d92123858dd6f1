// Job and schedule ids (src/domain/ids.ts): UUIDv7 from a pooled random source.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../../src/domain/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newId', () => {
  it('gives version-7 UUIDs, distinct and in increasing order, across many refills of its pool', () => {
    const before = Date.now();
    const ids = Array.from({ length: 20_000 }, () => newId());
    for (const id of ids) assert.match(id, V7);
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} before ${ids[i]}`);
    const ms = parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16);
    assert.ok(ms >= before - 1 && ms <= Date.now(), 'its first 48 bits are the time in ms');
  });

  it('draws its random bits evenly: each of the last 32 bits (fresh for every id; the bits before count within a millisecond) is set about half the time', () => {
    const n = 8192;
    const ones = new Array<number>(32).fill(0);
    for (let i = 0; i < n; i++) {
      const low = parseInt(newId().slice(-8), 16);
      for (let b = 0; b < 32; b++) if (Math.floor(low / 2 ** b) % 2 === 1) ones[b]!++;
    }
    // 8192 fair coin flips: 4096 ± 5 standard deviations (45)
    for (const [b, k] of ones.entries()) assert.ok(Math.abs(k - n / 2) < 230, `bit ${b} set ${k} times of ${n}`);
  });
});
