// The V8 flags PulseGate runs with in production: `npm start`, the container's CMD and the benchmark
// all start Node with exactly these (test/container.test.ts holds them to it). They are flags of the
// node command, not settings the service can change once running.
//
// Why: measured with `npm run bench -- --only backlog` (jobs created through the API, RSS sampled
// every 250 ms). With V8's defaults the young generation grows to 32 MB under load: RSS peaked at
// 161 MB over a million jobs. With a 4 MB semi-space alone (young generation 8 MB) it ran in a
// 128 -> 155 MB sawtooth: the old generation grew to about twice its live size between major
// collections. Growing it by 20% instead lets a major collection run sooner: RSS stays flat (peak
// 135 MB over a million jobs). The cost, read from nodejs_gc_duration_seconds while 60,000 jobs
// were created with 64 clients: 0.53-0.66 s of GC against 0.28-0.29 s with the defaults, 2-3% of
// the process's CPU time in that run (12-16 s); throughput differences were inside the noise here.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=20'];
