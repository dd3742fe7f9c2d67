/**
 * Coalesces per-key lookups made within a few milliseconds into one query for all their keys, so a
 * storm of sessions costs one round trip per batch instead of one per session. At most one query is
 * in flight: keys asked meanwhile wait for it and go in the next batch, so a lookup holds one pool
 * connection whatever the load (the inform writes must never wait for a connection behind lookups).
 * A failed query answers every waiter with `onError`'s value.
 */
export class BatchedLookup<V> {
  private waiters = new Map<string, Array<(v: V) => void>>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly query: (keys: string[]) => Promise<Map<string, V>>,
    private readonly missing: V,
    private readonly onError: (err: unknown) => V,
    private readonly delayMs = 2,
  ) {}

  get(key: string): Promise<V> {
    return new Promise((resolve) => {
      const w = this.waiters.get(key);
      if (w) w.push(resolve);
      else this.waiters.set(key, [resolve]);
      if (!this.running) this.timer ??= setTimeout(() => this.run(), this.delayMs);
    });
  }

  private run(): void {
    this.timer = null;
    const batch = this.waiters;
    this.waiters = new Map();
    this.running = true;
    const next = () => {
      this.running = false;
      if (this.waiters.size > 0) this.timer ??= setTimeout(() => this.run(), this.delayMs);
    };
    this.query([...batch.keys()])
      .then(
        (found) => {
          for (const [k, ws] of batch) {
            const v = found.get(k) ?? this.missing;
            for (const f of ws) f(v);
          }
        },
        (err) => {
          const v = this.onError(err);
          for (const ws of batch.values()) for (const f of ws) f(v);
        },
      )
      .finally(next);
  }
}
