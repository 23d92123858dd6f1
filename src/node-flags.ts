// The V8 flags PulseGate runs with in production: `npm start`, the container's CMD and the benchmark
// all start Node with exactly these (the benchmark imports this list; test/container.test.ts holds
// the other two to it). They are flags of the node command, not settings the service can change
// once running.
//
// Why: measured with `npm run bench -- --only backlog` (jobs created through the API, RSS sampled
// every 250 ms) and `--only delivery --cpu-prof` (GC's share of 40,000 deliveries), one run each:
//
//   flags                          backlog RSS peak         GC during 40,000 deliveries
//   (V8's defaults)                161 MB (1M jobs)          696 ms
//   semi-space 8                   155 MB (300k)             887 ms
//   semi-space 8, growing 50%      143 MB (300k), 147 (1M)   1,069 ms
//   semi-space 8, growing 20%      141 MB (300k)             1,619 ms
//   semi-space 4, growing 20%      135 MB (1M)               2,019 ms
//
// With the defaults the young generation grows to 32 MB under load (semi-spaces of 16 MB) and the
// old generation to about twice its live size before a major collection. An 8 MB semi-space and
// growing the old generation by 50% kept the backlog under 150 MB for 373 ms more GC over those
// 40,000 deliveries (~9 µs each).
//
// Then the 10-minute soak of issue 12 (1,000 jobs/s, failing and hanging receivers; live heap
// 31 MB from two heap snapshots 5 minutes apart: nothing grows) peaked at 155-158 MB with an 8 MB
// semi-space, 146-148 MB with 4 (2026-12-01, `--only soak --duration 150`, two runs each side on
// a shared machine). The GC cost of 4 against 8, measured the same day in alternating pairs of
// `--only delivery --rounds 1 --cpu-prof` (40,000 deliveries each): 1,381 and 1,591 ms against
// 1,402 and 1,339 ms, warm deliveries 5,328 and 5,450/s against 5,125 and 5,010/s: within noise
// now (the engine allocates less than when the table above was made). So 4 MB it was.
//
// Then the engine moved to a thread of its own (ENGINE_THREAD, on by default): the main thread
// serves the API and no longer makes the outgoing requests, and the engine isolate gets a 2 MB
// semi-space of its own (ENGINE_SEMI_SPACE_MB). With the main isolate at 4 MB the 10-minute soak
// peaked at 154 MB on two threads (141 / 152 / 154 first minute / last minute / max); with 2 MB
// at 148 (136 / 144 / 148), 2026-12-01. Intake and end to end with 2 against 4, same hour, three
// rounds each, ratios to the same round's reference: intake 0.22 / 0.25 / 0.35x against
// 0.30 / 0.27 / 0.25x, end to end 0.51 / 0.46 / 0.66x against 0.66 / 0.66 / 0.55x: no difference
// the noise lets us see. So 2 MB.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=50'];
