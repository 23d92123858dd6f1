// The pages beside the API, open without a key: Swagger UI (/docs), the OpenAPI document
// (/openapi.json) and the console (/console). The API answers them through a documented copy of
// itself (server.ts buildDocumentedServer), built on the first request for one and kept: until then
// none of their modules is loaded. Each request is passed on in process (inject) and its answer
// copied back: status, headers and body (these are small files and one JSON document).
//
// The copy carries the API's routes too (the OpenAPI document is built from them) but no
// authentication, so it answers only its pages: inject resolves the URL it is given, and a path
// such as /console/../v1/jobs, which reaches the /console/* route here, is /v1/jobs there. Any
// request whose route in the copy is not a page is answered 404.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The pages: the document, and Swagger UI and the console with everything under them. */
const PAGES: readonly string[] = ['/openapi.json', '/docs', '/console'];
const PAGE_ROUTES: readonly string[] = PAGES.flatMap((p) => (p.endsWith('.json') ? [p] : [p, `${p}/*`]));

/** A route of the documented copy that is a page (Swagger UI's own routes are under /docs/). */
function isPageRoute(url: string | undefined): boolean {
  return url !== undefined && PAGES.some((p) => url === p || url.startsWith(`${p}/`));
}

// about the connection or the body as sent, not the page: the server that sends it sets them
const NOT_COPIED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date']);

function copied(headers: Record<string, string | string[] | number | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !NOT_COPIED.has(name)) out[name] = typeof value === 'number' ? String(value) : value;
  return out;
}

export function forwardPages(app: FastifyInstance, build: () => Promise<FastifyInstance>): void {
  let pages: Promise<FastifyInstance> | null = null;
  const documented = async (): Promise<FastifyInstance> => {
    pages ??= build().then(async (server) => {
      server.addHook('onRequest', async (req, reply) => {
        if (!isPageRoute(req.routeOptions.url)) return reply.callNotFound();
      });
      await server.ready();
      return server;
    });
    // a failed build (answered 500) is tried again on the next request
    return pages.catch((err: unknown) => {
      pages = null;
      throw err;
    });
  };
  app.addHook('onClose', async () => {
    await (await pages?.catch(() => null))?.close();
  });
  const forward = async (req: FastifyRequest, reply: FastifyReply) => {
    // HEAD is answered as GET by fastify, which drops the body and keeps its length
    const res = await (await documented()).inject({ method: 'GET', url: req.url, headers: copied(req.headers) });
    reply.code(res.statusCode).headers(copied(res.headers));
    return res.rawPayload.length > 0 ? reply.send(res.rawPayload) : reply.send();
  };
  for (const url of PAGE_ROUTES) app.get(url, { schema: { hide: true } }, forward);
}
