// The API's own description, open like /healthz: clients are generated from it. /openapi.json is
// the document; /docs is Swagger UI over it (served from the package's files: no CDN, works offline).
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export async function docsRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { deepLinking: true, tryItOutEnabled: false } });
  app.get('/openapi.json', {
    schema: { operationId: 'getOpenApi', summary: 'This OpenAPI document (the same as openapi/openapi.yaml)', tags: ['ops'], security: [] },
  }, async (_req, reply) => {
    const doc = (app as unknown as { swagger(): unknown }).swagger();
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(doc));
  });
}
