// A bounded map that forgets its least recently used entry first (the API-key caches, the dedupe
// cache). In place of lru-cache, which allocates its arrays for `max` entries up front (~240 KB at
// 10,000, for each cache, used or not) and keeps four per-entry slots besides its Map: this is the
// Map alone, whose insertion order is the recency order (a hit is moved to the end).

export class Lru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`an Lru holds at least 1 entry, not ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }
}
