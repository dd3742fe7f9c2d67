/**
 * When to tell a shed CPE to come back (Retry-After): each shed CPE gets the next free slot at the
 * rate the ACS can complete sessions, never sooner than `minSeconds` nor later than `maxSeconds`. A
 * storm of N CPEs thus comes back spread over its drain time instead of hammering the ACS with
 * retries, each CPE being shed about once. Booking faster than that would only shed CPEs again (a
 * shed costs both sides a connection); those that come back a little early wait for room at the ACS
 * (admissionWaitMs) instead, so it does not idle while CPEs wait.
 *
 * The rate is the best completion rate of the last half minute or so (a decaying peak), not the
 * current one: the current rate falls whenever arrivals fall, and booking by it spirals (a stall of a
 * few seconds books the CPEs shed meanwhile far apart, fewer arrive, the measured rate falls further,
 * and the ACS sits idle while its CPEs wait for their slots, as seen in a storm on a loaded machine).
 */
export class AdmissionSchedule {
  /** Sessions completed per second: decaying peak. */
  private capacity = 0;
  private nextSlotAt = 0;

  constructor(
    private readonly o: { minSeconds: number; maxSeconds: number; initialRate: number; decay?: number },
  ) {}

  /** Once a second: sessions completed during the last second. */
  tick(completed: number): void {
    this.capacity = Math.max(completed, this.capacity * (this.o.decay ?? 0.97));
  }

  get rate(): number {
    return this.capacity || this.o.initialRate;
  }

  /** Retry-After (seconds) for a CPE shed at `now` (ms), booking its slot. */
  retryAfter(now = Date.now()): number {
    const rate = Math.max(this.rate, 1);
    const earliest = now + this.o.minSeconds * 1000;
    this.nextSlotAt = Math.min(
      Math.max(earliest, this.nextSlotAt + 1000 / rate),
      now + this.o.maxSeconds * 1000,
    );
    return Math.max(this.o.minSeconds, Math.ceil((this.nextSlotAt - now) / 1000));
  }
}

/**
 * New sessions parked until there is room (admissionWaitMs), oldest first. Requests answering our
 * digest challenge on the connection it went out on go before the others: their CPE already waited
 * its turn for the challenge. All wait equally long, so in each queue the oldest expire first.
 */
export class WaitingRoom<T extends { until: number }> {
  private answering: T[] = [];
  private waiting: T[] = [];

  get size(): number {
    return this.answering.length + this.waiting.length;
  }

  /** How many are ahead of a newcomer (an answer waits only behind other answers). */
  ahead(answering: boolean): number {
    return answering ? this.answering.length : this.size;
  }

  park(entry: T, answering: boolean): void {
    (answering ? this.answering : this.waiting).push(entry);
  }

  next(): T | undefined {
    return this.answering.shift() ?? this.waiting.shift();
  }

  /** Take out those whose wait ended by `now`. */
  expired(now: number): T[] {
    const out: T[] = [];
    for (const queue of [this.answering, this.waiting])
      while (queue[0] && queue[0].until <= now) out.push(queue.shift()!);
    return out;
  }

  clear(): void {
    this.answering = [];
    this.waiting = [];
  }
}
