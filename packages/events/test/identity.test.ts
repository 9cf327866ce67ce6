import { addIdsNamedBy, idsNamedBy } from '../src/identity';

describe('the ids a message names', () => {
  it('addIdsNamedBy adds exactly what idsNamedBy lists', () => {
    const messages = [
      { profileKey: 'p' },
      { profileKey: 'u', userId: 'u', anonymousId: 'a' },
      { profileKey: 'u2', userId: 'u2', previousId: 'old' },
      { profileKey: 'x', userId: 'y', anonymousId: 'z', previousId: 'w' },
      { profileKey: 'a', anonymousId: 'a' },
    ];
    for (const m of messages) {
      const into = new Set<string>();
      addIdsNamedBy(m, into);
      expect([...into]).toEqual(idsNamedBy(m));
    }
    const all = new Set<string>();
    for (const m of messages) addIdsNamedBy(m, all);
    expect([...all]).toEqual([...new Set(messages.flatMap(idsNamedBy))]);
  });
});
