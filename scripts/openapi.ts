// Writes openapi/openapi.yaml from the route schemas (`npm run openapi`); with --check, exits 1
// when the file on disk differs from what the routes say.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderOpenApi } from '../src/api/openapi.js';

const path = new URL('../openapi/openapi.yaml', import.meta.url);
const text = await renderOpenApi();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (current !== text) {
    console.error('openapi/openapi.yaml is stale: run `npm run openapi`');
    process.exit(1);
  }
  console.log('openapi/openapi.yaml is up to date');
} else {
  writeFileSync(path, text);
  console.log('wrote openapi/openapi.yaml');
}
