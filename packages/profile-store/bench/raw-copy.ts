/**
 * The segmenter's raw limit (`pnpm bench`): Postgres's own bulk load of one narrow row per event
 * (event id, profile key, time) — `COPY … FROM STDIN` through psql into a plain table of the
 * bench's schema, timed by psql's `\timing` (the COPY alone, not psql's start-up).
 */
import { spawn } from 'node:child_process';

/** Rows/s of one COPY of `n` rows into `${schema}.raw_copy` (created if missing, emptied first). */
export async function rawCopyRate(databaseUrl: string, schema: string, n: number): Promise<number> {
  const table = `${schema}.raw_copy`;
  const at = new Date().toISOString();
  const rows: string[] = [];
  for (let i = 0; i < n; i++) rows.push(`e-${i}\tu-${i % Math.max(1, Math.floor(n / 8))}\t${at}\n`);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', databaseUrl, '-c', 'SET client_min_messages = warning', '-c', `CREATE TABLE IF NOT EXISTS ${table} (event_id text, profile_key text, occurred_at timestamptz)`, '-c', `TRUNCATE ${table}`, '-c', '\\timing on', '-c', `COPY ${table} FROM STDIN`],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`psql exited ${code}`))));
    child.stdin.end(rows.join(''));
  });
  const ms = [...out.matchAll(/Time: ([\d.]+) ms/g)].at(-1)?.[1];
  if (ms === undefined) throw new Error(`cannot read psql's timing: ${out}`);
  return n / (Number(ms) / 1000);
}
