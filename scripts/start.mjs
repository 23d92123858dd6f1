// `npm start`: builds dist/ (and the console) when missing or older than any source file, then runs the service.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    const t = entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

const entry = 'dist/main.js';
const stale =
  !existsSync(entry) ||
  Math.max(newestMtime('src'), statSync('tsconfig.json').mtimeMs, statSync('package.json').mtimeMs) >
    statSync(entry).mtimeMs;
if (stale) {
  console.error('[pulsegate] building dist/ (missing or older than src/)');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
// the console (dist/console/), when it is missing or older than console/
const consoleEntry = 'dist/console/index.html';
if (!existsSync(consoleEntry) || newestMtime('console') > statSync(consoleEntry).mtimeMs) {
  console.error('[pulsegate] building the console (dist/console/)');
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'console/vite.config.ts', '--logLevel', 'warn'], { stdio: 'inherit' });
}
await import(pathToFileURL(entry).href);
