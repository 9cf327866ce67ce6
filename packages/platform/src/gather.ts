/** A chunk in preparation (opened, validated): calls wait for it until it is submitted or dropped. */
export type GatherTicket = { close(): void };

type Waiting<P> = { part: P; resolve: () => void; reject: (err: unknown) => void };

/**
 * Group commit of the chunks of several partitions. A chunk announces itself when its preparation
 * starts (`enter`) and is submitted once ready; submitted chunks wait until no chunk is still in
 * preparation and no call is running, then all of them go to `applyAll` in one call, and each
 * submitter learns that call's outcome. One call runs at a time; the next gathers meanwhile.
 *
 * kafkajs hands the partition batches of one fetch to `eachBatch` in one synchronous pass when
 * `partitionsConsumedConcurrently` covers them, and fetches again only once all are handled, so
 * the chunks of one fetch are applied in one call: one segmenter transaction instead of one per
 * partition. A chunk whose preparation fails (a keyring read) closes its ticket and is not waited for.
 */
export class ChunkGatherer<P> {
  private waiting: Waiting<P>[] = [];
  private preparing = 0;
  private running = false;
  private scheduled = false;

  constructor(private readonly applyAll: (parts: P[]) => Promise<void>) {}

  /** A chunk starts its preparation; calls wait for it until its ticket is closed (by `submit` or its owner). */
  enter(): GatherTicket {
    this.preparing++;
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        this.preparing--;
        this.kick();
      },
    };
  }

  /** Submits the chunk of `ticket`; resolves once the call it went into has succeeded, rejects with its error. */
  submit(ticket: GatherTicket, part: P): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.waiting.push({ part, resolve, reject }));
    ticket.close();
    this.kick();
    return done;
  }

  /**
   * Starts a call once nothing is in preparation, one macrotask later: the other partition handlers
   * of the same fetch have then entered (they start in one synchronous pass) and hold tickets.
   */
  private kick(): void {
    if (this.running || this.scheduled || this.preparing > 0 || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.running || this.preparing > 0 || this.waiting.length === 0) return;
    this.running = true;
    const taken = this.waiting;
    this.waiting = [];
    try {
      await this.applyAll(taken.map((w) => w.part));
      for (const w of taken) w.resolve();
    } catch (err) {
      for (const w of taken) w.reject(err);
    } finally {
      this.running = false;
      this.kick();
    }
  }
}
