// The intake ceiling: a bare fastify route on the same path as PulseGate's, that parses the JSON body
// and answers 201 without validating or storing anything. Usage: bare-route.ts <port>
import Fastify from 'fastify';

const port = Number(process.argv[2]);
const app = Fastify({ logger: false, keepAliveTimeout: 72_000 });
let n = 0;
app.post('/v1/jobs', async (_req, reply) => reply.code(201).send({ id: `job_${++n}`, status: 'scheduled' }));
app.get('/readyz', async () => ({ status: 'ready' }));
await app.listen({ port, host: '127.0.0.1' });
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void app.close().then(() => process.exit(0)));
