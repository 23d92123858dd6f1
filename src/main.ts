// Composition root: configuration, then the service, then the signals that stop it gracefully.
import 'dotenv/config';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startService } from './service.js';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`[pulsegate] ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const service = await startService(config);

let signals = 0;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    signals++;
    if (signals > 1) {
      service.logger.warn({ signal: sig }, 'second signal: exiting now (held jobs come back when their lease expires)');
      process.exit(1);
    }
    service.logger.info({ signal: sig }, 'shutting down');
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        service.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
