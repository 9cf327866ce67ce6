/**
 * `pnpm bench:cost:pg`: Postgres bytes per person and per event, and the apply rate, at growing
 * numbers of people (bench/cost.ts). Printed, never asserted. BENCH_COST_PEOPLE (comma-separated,
 * default 10000,100000; 1000000 takes hours on a 2-core machine).
 */
import { commonEnv, parseEnv } from '@pstream/platform';
import { z } from 'zod';
import { costTable, runPgCost, type PgCostFigures } from './cost';

const env = parseEnv(
  z.object({
    DATABASE_URL: commonEnv.DATABASE_URL,
    BENCH_COST_PEOPLE: z
      .string()
      .default('10000,100000')
      .transform((s) => s.split(',').map((x) => Number(x.trim())))
      .pipe(z.array(z.number().int().min(100, 'each size must be a whole number of people ≥ 100'))),
  }),
  process.env,
);

async function main(): Promise<void> {
  const figures: PgCostFigures[] = [];
  for (const people of env.BENCH_COST_PEOPLE) {
    console.log(`${people} people:`);
    const f = await runPgCost({ databaseUrl: env.DATABASE_URL, people, print: console.log });
    console.log(
      `  ${f.events} events, ${Math.round(f.eventsPerSecond)} events/s, ${f.pruned} rows pruned, ${(f.bytesPerPerson / 1024).toFixed(2)} KB/person, ${f.bytesPerEvent.toFixed(0)} B/event`,
    );
    figures.push(f);
  }
  console.log(`\n${costTable(figures)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
