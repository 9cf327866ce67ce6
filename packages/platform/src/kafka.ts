import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client whose own logs go through our pino logger. */
export function createKafka(options: { brokers: string[]; clientId: string; log: Logger }): Kafka {
  // We want kafkajs 2's default partitioner (murmur2, as Java clients place keys); the warning
  // that it changed since kafkajs 1 is noise for a project that never used kafkajs 1.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
  const log = options.log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    // Kafka's info chatter (joins, partition assignments) is noise at our info level.
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        log[levels[level] ?? 'info'](fields, message);
      },
    retry: { initialRetryTime: 100, retries: 8 },
  });
}
