/** Seeded, platform-independent pseudo-randomness for deterministic plans (no Math.random in domain/). */

/** 32-bit FNV-1a of a string, with a selectable offset basis so two calls give independent halves. */
function fnv1a(s: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32) so nearby strings spread over the whole range
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 52-bit hash of a string as a non-negative integer (exact in a double). */
export function hash52(s: string): number {
  const hi = fnv1a(s, 0x811c9dc5) & 0xfffff;
  const lo = fnv1a(s, 0x050c5d1f);
  return hi * 2 ** 32 + lo;
}

/** Seeded generator (sfc32). `next()` returns a float in [0, 1). */
export interface Prng {
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
}

export function createPrng(seed: string | number): Prng {
  const s = String(seed);
  let a = fnv1a(s, 0x811c9dc5);
  let b = fnv1a(s, 0x9e3779b9);
  let c = fnv1a(s, 0x85ebca6b);
  let d = 1;
  const raw = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) raw();
  return { next: raw, int: (n: number) => Math.floor(raw() * n) };
}
