import { consumerCheck, runReadinessChecks } from '../src/health';

describe('consumerCheck', () => {
  it('passes while the consumer has no reason to be unready and names the reason when it has one', async () => {
    const consumer: { reason?: string } = {};
    const check = consumerCheck({ unreadyReason: () => consumer.reason });
    expect(check.name).toBe('consumer');
    expect(await runReadinessChecks([check])).toEqual([{ name: 'consumer', ok: true }]);
    consumer.reason = 'partition 3 stalled for 61 s';
    expect(await runReadinessChecks([check])).toEqual([
      { name: 'consumer', ok: false, error: 'partition 3 stalled for 61 s' },
    ]);
  });
});
