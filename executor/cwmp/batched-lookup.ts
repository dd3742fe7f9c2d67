/**
 * Coalesces per-key lookups made within a few milliseconds into one query for all their keys, so a
 * storm of sessions costs one round trip per batch instead of one per session (and holds one pool
 * connection, not hundreds). A failed query answers every waiter with `fallback`.
 */
export class BatchedLookup<V> {
  private waiters = new Map<string, Array<(v: V) => void>>();
  private timer: NodeJS.Timeout | null = null;

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
      this.timer ??= setTimeout(() => this.run(), this.delayMs);
    });
  }

  private run(): void {
    this.timer = null;
    const batch = this.waiters;
    this.waiters = new Map();
    this.query([...batch.keys()]).then(
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
    );
  }
}
