import path from 'node:path';

/** The repository's root (this file is packages/testkit/src/root.ts): where .env, .data, docs and infra are. */
export const REPO_ROOT = path.resolve(__dirname, '../../..');
