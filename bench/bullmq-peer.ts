// The peer: a BullMQ worker in a process of its own, delivering each job's data with undici.request
// to the same receiver PulseGate delivers to, with the same concurrency. Jobs are added by the load
// generator (Queue.add, BullMQ's own intake). Driven by bench/run.ts over IPC:
//   start, stop, redisMemory, purge (deletes one queue's keys).

import { Queue, Worker, type Job } from 'bullmq';
import { request } from 'undici';
import { serve } from './lib/rpc.js';

export interface PeerStart {
  queue: string;
  prefix: string;
  host: string;
  port: number;
  concurrency: number;
  receiverUrl: string;
}

interface Where {
  host: string;
  port: number;
  prefix: string;
  queue: string;
}

let worker: Worker | null = null;

type RedisClient = Awaited<ReturnType<Queue['getBackend']>['client']>;

/**
 * Runs fn with the Redis client of a Queue handle on the given queue (closed afterwards).
 * BullMQ 6 has no Queue.client: the raw client is on the Redis backend, getBackend().client.
 */
async function withClient<T>(a: Where, fn: (client: RedisClient) => Promise<T>): Promise<T> {
  const q = new Queue(a.queue, { connection: { host: a.host, port: a.port }, prefix: a.prefix });
  try {
    await q.waitUntilReady();
    return await fn(await q.getBackend().client);
  } finally {
    await q.close();
  }
}

serve({
  start: async (a: PeerStart) => {
    if (worker) throw new Error('a worker is already running');
    const deliver = async (job: Job) => {
      const res = await request(a.receiverUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'webhook-id': String(job.id) },
        body: JSON.stringify(job.data),
      });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
    };
    worker = new Worker(a.queue, deliver, { connection: { host: a.host, port: a.port }, prefix: a.prefix, concurrency: a.concurrency });
    worker.on('error', (err) => console.error(`[bullmq-peer] ${err.message}`));
    await worker.waitUntilReady();
  },
  stop: async () => {
    await worker?.close();
    worker = null;
  },
  /** Redis INFO memory: used_memory and used_memory_rss in bytes. */
  redisMemory: (a: Where) =>
    withClient(a, async (client) => {
      const info = await client.info();
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
      return { used_memory: field('used_memory'), used_memory_rss: field('used_memory_rss') };
    }),
  /** Deletes every key of one queue (SCAN + DEL, bounded by the key count). Returns how many. */
  purge: (a: Where) =>
    withClient(a, async (client) => {
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await client.scan(cursor, { MATCH: `${a.prefix}:${a.queue}:*`, COUNT: 10_000 });
        cursor = next;
        if (keys.length) deleted += await client.del(...keys);
      } while (cursor !== '0');
      return { deleted };
    }),
});
