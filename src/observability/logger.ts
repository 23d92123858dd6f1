// JSON logs to stdout with pino. Secrets never reach a line: the redaction list covers every
// place a credential or a payload could appear.
import pino, { type Logger } from 'pino';
import type { EventBus } from './events.js';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'pulsegate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["idempotency-key"]',
          'headers.authorization',
          'payload',
          'payload_json',
          'body',
          '*.payload',
          '*.payload_json',
          'destination.headers',
          '*.destination.headers',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/** One log line per job state change and per attempt, from engine events. */
export function attachEventLogger(events: EventBus, logger: Logger): () => void {
  return events.on((e) => {
    switch (e.type) {
      case 'attempt.finished':
        logger.info(e, 'attempt finished');
        break;
      case 'store.error':
        logger.error(e, 'store error');
        break;
    }
  });
}
