// The delays of the paced scenario's scheduled jobs (bench/loadgen.ts, `paced`).
//
// The generator sends one job every 1000 / rate ms and schedules every other one. Spreading the
// delays over [min, max) is not enough: the due time is the send time plus the delay, and a delay
// that grows with the index modulo the range (the first version took (i * 7919) % 900) makes send
// time and delay cancel out: i + (719 i mod 900) is the same for i, i + 10, i + 20 and so on, so at
// 1,000 jobs/s up to 90 jobs fell due in the same millisecond, 4,972 of 5,000 in such clumps. The
// lateness then measured how fast a burst of 90 drains, on both sides, not how punctual a scheduler
// is. The fractional parts of i times the golden ratio cover the range as evenly, and never put two
// of these jobs due in the same millisecond (test/unit/paced-delay.test.ts).

const GOLDEN = (Math.sqrt(5) - 1) / 2;

/** The i-th job's delay_ms: none for an even i (due at once), in [min, max) for an odd one. */
export function pacedDelay(i: number, min: number, max: number): number | undefined {
  if (i % 2 === 0) return undefined;
  return min + Math.floor(((i * GOLDEN) % 1) * Math.max(1, max - min));
}
