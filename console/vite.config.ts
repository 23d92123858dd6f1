// The console's build: Vite with Preact, from console/ into dist/console/, served by the service at
// /console. No CDN, no inline script or style: the page runs under a strict Content-Security-Policy.
import preact from '@preact/preset-vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  plugins: [preact()],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // no inlined assets (data: URLs) and no module preload polyfill (an inline script)
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
