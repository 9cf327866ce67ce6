import type { Keyring } from '@pstream/platform';

/**
 * A message of a sealed topic (every topic is sealed per person: docs/privacy.md) as JSON, read
 * as a downstream consumer reads it; undefined for an erased person's.
 */
export async function openJson<T>(keyring: Pick<Keyring, 'open'>, value: Buffer | null): Promise<T | undefined> {
  const [o] = await keyring.open([value]);
  if (o?.kind === 'opened') return JSON.parse(o.plaintext.toString('utf8')) as T;
  if (o?.kind === 'clear') return JSON.parse(value!.toString('utf8')) as T;
  return undefined;
}
