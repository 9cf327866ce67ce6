import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One root logger per process. Pretty, colored lines when a person is watching (a TTY, or
 * LOG_FORMAT=pretty as `pnpm start` sets for its interleaved output); JSON lines otherwise so
 * log shippers can parse them.
 */
export function createLogger(name: string, level = 'info', destination?: pino.DestinationStream): Logger {
  const format = process.env.LOG_FORMAT;
  const pretty =
    destination === undefined && (format === 'pretty' || (process.stdout.isTTY === true && format !== 'json'));
  const options: pino.LoggerOptions = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { request: requestSerializer, req: requestSerializer },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { colorize: true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'x-write-key', 'x-api-key', 'cookie', 'set-cookie'];

/**
 * Where secrets can appear in a log line: credentials in request headers (write keys as Basic
 * auth or X-Write-Key, bearer tokens), and the configuration variables that list them. Headers
 * are redacted at every depth we log them at (the request itself, its raw Node message, an
 * error's request).
 */
export const REDACT_PATHS: string[] = [
  ...[
    'headers',
    'req.headers',
    'request.headers',
    'request.raw.headers',
    'req.raw.headers',
    'err.request.headers',
    'err.config.headers',
    'res.headers',
  ].flatMap((base) => SECRET_HEADERS.map((h) => `${base}["${h}"]`)),
  ...['WRITE_KEYS', 'API_TOKENS', 'writeKey', 'token', 'password'].flatMap((k) => [k, `*.${k}`]),
];

type LoggedRequest = { id?: unknown; method?: unknown; url?: unknown; routeOptions?: { url?: unknown }; ip?: unknown };

/**
 * A request as one small object: method, URL, route, id. Error logs used to dump the whole
 * request, headers and all, which put write keys and bearer tokens in the logs.
 */
function requestSerializer(r: LoggedRequest | null | undefined): unknown {
  if (r === null || typeof r !== 'object') return r;
  return { id: r.id, method: r.method, url: r.url, route: r.routeOptions?.url, ip: r.ip };
}
