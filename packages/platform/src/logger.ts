import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One root logger per process. Pretty, colored lines when a person is watching (a TTY, or
 * LOG_FORMAT=pretty as `pnpm start` sets for its interleaved output); JSON lines otherwise so
 * log shippers can parse them.
 */
export function createLogger(name: string, level = 'info'): Logger {
  const format = process.env.LOG_FORMAT;
  const pretty = format === 'pretty' || (process.stdout.isTTY === true && format !== 'json');
  return pino({
    name,
    level,
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  });
}
