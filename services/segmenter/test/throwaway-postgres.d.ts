/**
 * A Postgres cluster of the test's own (initdb in a temp dir, a random port in 20000-29999), so
 * a fault test can stop and start it without touching the shared server. Runs as the
 * `postgres` OS user when we are root (Postgres refuses to run as root).
 */
export declare function startThrowawayPostgres(): Promise<{
    url: string;
    stop(): void;
    start(): void;
    destroy(): void;
}>;
