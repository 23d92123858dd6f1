// The web console, built by `npm run build` (Vite, console/) into dist/console/ and served here at
// /console under a strict Content-Security-Policy: scripts, styles and data from this origin only,
// no inline code, no framing. The page holds no data of its own: it calls /v1 with the operator's key.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** dist/console/, the same directory whether this file runs from src/ (tsx) or dist/ (built). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function registerConsole(app: FastifyInstance): Promise<void> {
  const headers = (reply: FastifyReply) => {
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-cache');
  };
  if (!existsSync(`${CONSOLE_DIR}index.html`)) {
    app.get('/console', { schema: { hide: true } }, async (_req, reply) =>
      reply.code(404).type('text/plain; charset=utf-8').send('The console is not built: run `npm run build`.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, { root: CONSOLE_DIR, prefix: '/console/', setHeaders: headers, index: 'index.html', schemaHide: true, wildcard: true });
  app.get('/console', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/', 302));
}
