import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { classifyScorerFailure } from '../src/processor';

/** Real Redis errors, sorted the way the batch consumer acts on them. */
describe('classifyScorerFailure', () => {
  const redis = new Redis(process.env.REDIS_URL!);
  afterAll(() => redis.quit());
  const errorOf = async (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: unknown) => err,
    );

  it('treats a Lua error raised while running a script, and CROSSSLOT, as poison', async () => {
    // What bad data does inside our apply script: arithmetic on a value that is not a number.
    const err = await errorOf(redis.eval('return tonumber(ARGV[1]) + 1', 0, 'not-a-number'));
    expect((err as Error).name).toBe('ReplyError');
    expect(classifyScorerFailure(err)).toBe('poison');
    // WRONGTYPE from a call inside the script: the person's stored state does not fit.
    const called = await errorOf(
      redis
        .eval("return redis.call('INCR', KEYS[1])", 1, `test:failures:${process.pid}`)
        .then(() => redis.eval("return redis.call('HSET', KEYS[1], 'a', 'b')", 1, `test:failures:${process.pid}`)),
    );
    expect((called as Error).message).toMatch(/^WRONGTYPE .*user_script:1/);
    expect(classifyScorerFailure(called)).toBe('poison');
    // The same failure tagged as a memory limit inside a script heals, so it is retried.
    expect(
      classifyScorerFailure(
        Object.assign(
          new Error("OOM command not allowed when used memory > 'maxmemory'. script: abc, on @user_script:3."),
          { name: 'ReplyError' },
        ),
      ),
    ).toBe('transient');
    // A Cluster refusing keys of two slots in one call: the key names are the cause, a retry meets the same.
    expect(
      classifyScorerFailure(
        Object.assign(new Error("CROSSSLOT Keys in request don't hash to the same slot"), { name: 'ReplyError' }),
      ),
    ).toBe('poison');
    await redis.del(`test:failures:${process.pid}`);
  });

  it('treats a refused connection and a reply error outside a script as transient', async () => {
    // What ioredis hands on when Redis is gone: the socket's own error.
    const refused = await new Promise<Error>((resolve) => connect(1, '127.0.0.1').on('error', resolve));
    expect((refused as Error & { code?: string }).code).toBe('ECONNREFUSED');
    expect(refused).toBeDefined();
    expect(classifyScorerFailure(refused)).toBe('transient');
    // A reply error that does not come from a script (as READONLY during a failover, LOADING, OOM):
    // here a wrong-arity reply, the one we can cause on a healthy server.
    const reply = await errorOf(redis.call('SET', 'x'));
    expect((reply as Error).name).toBe('ReplyError');
    expect(classifyScorerFailure(reply)).toBe('transient');
  });
});
