import { mergeReadiness } from '../src/workers';

describe("an instance's readiness from its workers' checks", () => {
  it('passes a check only where it passed in every worker, naming the workers where it failed', () => {
    const merged = mergeReadiness(
      new Map([
        [
          1,
          [
            { name: 'kafka', ok: true as const },
            { name: 'producer', ok: false as const, error: 'last send failed: boom' },
          ],
        ],
        [
          2,
          [
            { name: 'kafka', ok: true as const },
            { name: 'producer', ok: true as const },
          ],
        ],
      ]),
    );
    expect(merged).toEqual([
      { name: 'kafka', ok: true },
      { name: 'producer', ok: false, error: 'worker 1: last send failed: boom' },
    ]);
  });

  it('fails the instance for a worker that did not report', () => {
    const merged = mergeReadiness(
      new Map([
        [1, [{ name: 'kafka', ok: true as const }]],
        [3, undefined],
      ]),
    );
    expect(merged).toEqual([
      { name: 'kafka', ok: true },
      { name: 'worker', ok: false, error: expect.stringMatching(/^worker 3 did not answer within \d+ ms$/) },
    ]);
  });
});
