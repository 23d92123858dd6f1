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
// growing the old generation by 50% keep the backlog under 150 MB for 373 ms more GC over those
// 40,000 deliveries (~9 µs each); the tighter settings save a few MB more for several times that.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=50'];
