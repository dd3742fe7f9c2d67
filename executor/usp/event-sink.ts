import type { DeviceEvent } from '../../fleet/events.js';

/** Where the controller persists what agents said, before it acknowledges (invariant 6). */
export interface EventSink {
  append(events: DeviceEvent[]): Promise<void>;
}

/**
 * Group-commits appends: callers wait for the batch their events went into. A storm of 100 000 Boot!
 * notifications becomes ~50 multi-row INSERTs instead of 100 000 round trips, and no caller is
 * acknowledged before its rows are written.
 */
export function batchingSink(
  write: (events: DeviceEvent[]) => Promise<void>,
  opts: { maxBatch?: number; maxDelayMs?: number } = {},
): EventSink & { flush(): Promise<void> } {
  const maxBatch = opts.maxBatch ?? 2_000;
  const maxDelayMs = opts.maxDelayMs ?? 5;
  let queue: Array<{ events: DeviceEvent[]; resolve: () => void; reject: (e: unknown) => void }> = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const run = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (queue.length === 0) return inFlight;
    const batch = queue;
    queue = [];
    queued = 0;
    // One write at a time keeps the connection pool free for everything else.
    inFlight = inFlight.then(async () => {
      try {
        await write(batch.flatMap((b) => b.events));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    });
    return inFlight;
  };

  return {
    append(events) {
      if (events.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        queue.push({ events, resolve, reject });
        queued += events.length;
        if (queued >= maxBatch) void run();
        else if (!timer) timer = setTimeout(run, maxDelayMs);
      });
    },
    async flush() {
      await run();
    },
  };
}

/** An in-memory sink (tests, the simulator's stand-alone mode). */
export function memorySink(): EventSink & { events: DeviceEvent[]; failNext?: number } {
  const sink = {
    events: [] as DeviceEvent[],
    failNext: 0,
    async append(events: DeviceEvent[]) {
      if (sink.failNext > 0) {
        sink.failNext -= 1;
        throw new Error('event store unavailable');
      }
      sink.events.push(...events);
    },
  };
  return sink;
}
