// Composition root: configuration, then the service, then the signals that stop it gracefully.
import 'dotenv/config';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startService } from './service.js';

// A configuration the service refuses (a bad variable, or a non-loopback HOST without API keys)
// ends the process with code 2 and a message naming the variable.
function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(`[pulsegate] ${err.message}`);
    process.exit(2);
  }
  throw err;
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  exitOnConfigError(err);
}

const service = await startService(config).catch(exitOnConfigError);

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
