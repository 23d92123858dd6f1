// Job and schedule ids: UUIDv7 (time-ordered, so the primary key's index grows at its end), from
// the uuidv7 package's generator. Its default random source refills 32 bytes from the OS at a
// time, about every third id, and each refill was 2–3% of the intake's CPU in a profile; this one
// draws 4 KiB at a time from the same source (crypto.randomFillSync).

import { randomFillSync } from 'node:crypto';
import { V7Generator } from 'uuidv7';

const pool = new Uint32Array(1024);
let next = pool.length;

const generator = new V7Generator({
  nextUint32(): number {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++] as number;
  },
});

/** A new UUIDv7, as its canonical string. */
export function newId(): string {
  return generator.generate().toString();
}
