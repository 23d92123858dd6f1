// What a browser test of the console needs: the console built (dist/console/), and Debian's
// chromium, driven by playwright-core. .ci/run installs chromium; locally a test without it skips
// and says how to get it, while under CI=true a missing browser fails.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CONSOLE_DIR } from '../../src/api/console.js';
import { newest, ROOT } from './build.js';

/** Builds the console when dist/console/ is missing or older than console/ or the client types. */
export function ensureConsoleBuilt(): void {
  const index = join(CONSOLE_DIR, 'index.html');
  const sources = Math.max(newest(join(ROOT, 'console')), newest(join(ROOT, 'src/client')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  execFileSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', join(ROOT, 'console/vite.config.ts'), '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/** The chromium executable, or null (with the reason) when there is none. */
export function chromiumPath(): { path: string | null; why: string } {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
  const path = candidates.find((p) => existsSync(p)) ?? null;
  return { path, why: path ? '' : `no chromium at ${candidates.join(', ')}: apt-get install chromium (or set CHROMIUM_PATH)` };
}
