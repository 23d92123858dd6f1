// The API's own description, open like /healthz: clients are generated from it.
import type { FastifyInstance } from 'fastify';

export function docsRoutes(app: FastifyInstance): void {
  app.get('/openapi.json', {
    schema: { operationId: 'getOpenApi', summary: 'This OpenAPI document (the same as openapi/openapi.yaml)', tags: ['ops'], security: [] },
  }, async (_req, reply) => {
    const doc = (app as unknown as { swagger(): unknown }).swagger();
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(doc));
  });
}
