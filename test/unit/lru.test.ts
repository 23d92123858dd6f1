import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lru } from '../../src/lru.js';

describe('Lru', () => {
  it('forgets the least recently used entry when it holds more than max', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.get('a'), 1, 'a hit makes a the most recent');
    lru.set('c', 3);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.get('a'), 1);
    assert.equal(lru.get('c'), 3);
    assert.equal(lru.size, 2);
  });

  it('counts a set of a key it holds as a use, not a new entry', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('a', 10);
    lru.set('c', 3);
    assert.deepEqual([lru.get('a'), lru.get('b'), lru.get('c')], [10, undefined, 3]);
  });

  it('deletes, and refuses a size under 1', () => {
    const lru = new Lru<string, number>(1);
    lru.set('a', 1);
    assert.equal(lru.delete('a'), true);
    assert.equal(lru.get('a'), undefined);
    assert.throws(() => new Lru(0), RangeError);
  });
});
