// A seeded, deterministic PRNG for fuzz tests: the same seed gives the same cases on every machine.

/**
 * The fuzz seed and case count: SKILLPLUG_FUZZ_SEED, and SKILLPLUG_FUZZ_CASES times `scale` (a suite whose
 * case costs more takes a share), else the short run's defaults.
 */
export function fuzzSettings(defaultCases: number, scale = 1): { seed: number; cases: number } {
  const seed = Number(process.env.SKILLPLUG_FUZZ_SEED ?? 20261129);
  const asked = process.env.SKILLPLUG_FUZZ_CASES === undefined ? undefined : Number(process.env.SKILLPLUG_FUZZ_CASES);
  if (!Number.isSafeInteger(seed) || (asked !== undefined && (!Number.isSafeInteger(asked) || asked < 0))) throw new Error('SKILLPLUG_FUZZ_SEED and SKILLPLUG_FUZZ_CASES must be whole numbers');
  return { seed, cases: asked === undefined ? defaultCases : Math.max(1, Math.ceil(asked * scale)) };
}

/** mulberry32: small, fast and good enough to spread cases; not for anything secret. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}
