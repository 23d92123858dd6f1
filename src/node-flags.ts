// The V8 flags PulseGate runs with in production: `npm start`, the container's CMD and the benchmark
// all start Node with exactly these (test/container.test.ts holds them to it). They are flags of the
// node command, not settings the service can change once running.
//
// Why: measured with `npm run bench -- --only backlog` (1M jobs through the API, RSS sampled every
// 250 ms). With V8's defaults the young generation grows to 32 MB under load and the old generation
// to twice its live size between major collections: RSS ran in a 128 -> 155 MB sawtooth. A 4 MB
// semi-space keeps the young generation at 8 MB (throughput unchanged within this machine's noise),
// and growing the old generation by 20% instead of V8's default lets a major collection run before
// it has doubled (a major collection of ~30 MB live costs a few ms here; 50 of them while storing
// 150,000 jobs took 0.29 s in all): RSS stays flat at ~130 MB.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=20'];
