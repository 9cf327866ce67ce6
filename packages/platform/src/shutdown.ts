import type { Logger } from 'pino';

/**
 * The one place signals are handled: on SIGINT/SIGTERM run `stop` (stop intake, drain in-flight
 * work, close clients) and exit; if it has not finished by the deadline, exit anyway with 1.
 * A second signal exits at once — unless it comes within a second of the first: Ctrl-C reaches a
 * child both from the terminal and from the process manager relaying it, and that pair must not
 * cut the drain short.
 */
export function handleSignals(log: Logger, stop: () => Promise<void>, deadlineMs = 10_000): void {
  let stoppingSince: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      if (Date.now() - stoppingSince < 1000) return;
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stoppingSince = Date.now();
    log.info({ signal, deadlineMs }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown deadline passed, exiting');
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Wraps a close function so calling it twice does the work once. */
export function once(close: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= close());
}
