// Preloaded (node --import) into every process the benchmark starts. When the benchmark process
// dies without cleaning up (SIGKILL, a crash), its children are reparented: they notice within half
// a second and exit, so an interrupted run leaves no stray servers or load generators behind.
/* global process, setInterval */
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(70);
}, 500).unref();
