/** A dependency `/readyz` checks; `check` rejects (or times out) when the dependency is unusable. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface ReadinessResult {
  ready: boolean;
  checks: Array<{ name: string; ok: boolean; error?: string; ms: number }>;
}

export async function runChecks(checks: ReadinessCheck[], timeoutMs = 2_000): Promise<ReadinessResult> {
  const results = await Promise.all(
    checks.map(async (c) => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          c.check(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return { name: c.name, ok: true, ms: Math.round(performance.now() - started) };
      } catch (err) {
        return {
          name: c.name,
          ok: false,
          error: (err as Error).message,
          ms: Math.round(performance.now() - started),
        };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ready: results.every((r) => r.ok), checks: results };
}
