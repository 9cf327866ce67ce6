/** Every error code a service can answer is in its README's list: the documented list cannot drift. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HTTP_ERRORS, httpErrors } from '@pstream/http';
import { IngestErrors } from '@pstream/ingest/errors';
import { QueryErrors } from '@pstream/query-api/errors';

const readme = (file: string) => readFileSync(path.resolve(__dirname, '..', file), 'utf8');

describe('the documented error codes', () => {
  it.each([
    ['services/ingest/README.md', Object.values(IngestErrors)],
    ['services/query-api/README.md', Object.values(QueryErrors)],
  ])('%s lists every code of the service', (file, codes) => {
    const text = readme(file);
    expect(codes.filter((code) => !text.includes(code))).toEqual([]);
  });

  it('packages/http/README.md lists every code every service shares', () => {
    const text = readme('packages/http/README.md');
    expect(Object.values(HTTP_ERRORS).filter((suffix) => !text.includes(`\`${suffix}\``))).toEqual([]);
    expect(Object.values(httpErrors('SCR'))).toContain('SCR_METHOD_NOT_ALLOWED');
  });
});
