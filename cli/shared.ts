import { ConfigError, type Config } from '../platform/config.js';

export function requireDatabaseUrl(config: Config): string {
  const url = config.env.DATABASE_URL;
  if (!url)
    throw new ConfigError(
      'DATABASE_URL: required for this command (fleetbrain dev sets it for its own processes)',
    );
  return url;
}

/** Runs `stop` once on SIGINT/SIGTERM, then exits; a second signal exits at once. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`\nfleetbrain: ${signal} received, shutting down\n`);
    stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        process.stderr.write(`fleetbrain: shutdown error: ${(err as Error).message}\n`);
        process.exit(1);
      });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
