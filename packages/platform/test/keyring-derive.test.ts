import { hkdfSync, randomBytes } from 'node:crypto';
import { deriveMessageKey } from '../src/keyring';

describe('deriveMessageKey', () => {
  it('gives the bytes of hkdfSync (SHA-256, no salt, the sealed-message info, 32 bytes) for two to four keys', () => {
    for (let i = 0; i < 3000; i++) {
      const keys = Array.from({ length: 2 + (i % 3) }, () => randomBytes(32));
      const want = Buffer.from(hkdfSync('sha256', Buffer.concat(keys), Buffer.alloc(0), 'pstream sealed message', 32));
      expect(deriveMessageKey(keys).equals(want)).toBe(true);
    }
  });
});
