import { ChunkGatherer } from '../src/gather';

/** A promise and its resolve/reject, to hold a call open. */
function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ChunkGatherer', () => {
  it('waits for every chunk in preparation, then applies all submitted ones in one call', async () => {
    const calls: string[][] = [];
    const gatherer = new ChunkGatherer<string>(async (parts) => void calls.push(parts));
    const a = gatherer.enter();
    const b = gatherer.enter();
    const c = gatherer.enter();
    const doneA = gatherer.submit(a, 'a');
    await tick();
    expect(calls).toEqual([]); // b and c are still being prepared
    const doneC = gatherer.submit(c, 'c');
    b.close(); // b failed before submitting: not waited for any longer
    await Promise.all([doneA, doneC]);
    expect(calls).toEqual([['a', 'c']]);
  });

  it('runs one call at a time; what is submitted meanwhile goes into the next', async () => {
    const calls: string[][] = [];
    const held = deferred();
    const gatherer = new ChunkGatherer<string>(async (parts) => {
      calls.push(parts);
      if (calls.length === 1) await held.promise;
    });
    const first = gatherer.submit(gatherer.enter(), 'a');
    await tick();
    const second = [gatherer.submit(gatherer.enter(), 'b'), gatherer.submit(gatherer.enter(), 'c')];
    await tick();
    expect(calls).toEqual([['a']]);
    held.resolve();
    await Promise.all([first, ...second]);
    expect(calls).toEqual([['a'], ['b', 'c']]);
  });

  it('rejects every chunk of a failed call with its error, and carries on with the next', async () => {
    let fail = true;
    const gatherer = new ChunkGatherer<string>(async () => {
      if (fail) throw new Error('boom');
    });
    const a = gatherer.enter();
    const b = gatherer.enter();
    const results = await Promise.allSettled([gatherer.submit(a, 'a'), gatherer.submit(b, 'b')]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['boom', 'boom']);
    fail = false;
    await expect(gatherer.submit(gatherer.enter(), 'c')).resolves.toBeUndefined();
  });

  it('closes a ticket once: a second close does not release another chunk', async () => {
    const calls: string[][] = [];
    const gatherer = new ChunkGatherer<string>(async (parts) => void calls.push(parts));
    const a = gatherer.enter();
    const b = gatherer.enter();
    a.close();
    a.close();
    const doneB = gatherer.submit(b, 'b');
    const c = gatherer.enter();
    await tick();
    expect(calls).toEqual([]); // c is in preparation
    await Promise.all([doneB, gatherer.submit(c, 'c')]);
    expect(calls).toEqual([['b', 'c']]);
  });
});
