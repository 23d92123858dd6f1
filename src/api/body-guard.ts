// Bounds what an early answer costs. Node reads and discards the rest of a request body after the
// answer when the connection is kept alive, and fastify's bodyLimit applies only when a parser runs:
// so a request refused before its body is read (no key, an open route, a 404) could make the server
// read a declared 50 GiB to the end. Two rules, ahead of authentication:
//   - a Content-Length over the body limit is answered 413 at once, on any route, with or without a key;
//   - an answer sent while a body of unknown length (chunked) or of more than DRAIN_MAX_BYTES is still
//     unread closes the connection. A smaller declared body is read and dropped, as Node does, so a
//     client that sent a small request without a key keeps its connection.

import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

/** The most of a refused body read (and dropped) to keep its connection alive. */
export const DRAIN_MAX_BYTES = 64 * 1024;

export function registerBodyGuard(app: FastifyInstance, bodyLimit: number): void {
  app.addHook('onRequest', async (req) => {
    const declared = req.headers['content-length'];
    // a malformed length never gets here: Node's HTTP parser refuses it
    if (declared !== undefined && Number(declared) > bodyLimit) {
      throw new ApiError(413, 'payload_too_large', `request body is too large: ${declared} bytes declared, the limit is ${bodyLimit}`);
    }
  });
  app.addHook('onSend', async (req, reply) => {
    if (req.raw.complete) return;
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (chunked || Number(req.headers['content-length'] ?? 0) > DRAIN_MAX_BYTES) reply.header('connection', 'close');
  });
}
