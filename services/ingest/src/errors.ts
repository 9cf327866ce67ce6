/** Error codes of the ingest service (STYLE: one list per package, prefixed). */
export const IngestErrors = {
  KAFKA_UNAVAILABLE: 'ING_KAFKA_UNAVAILABLE',
} as const;
