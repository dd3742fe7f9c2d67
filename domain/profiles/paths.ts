/** Instance wildcards in profile paths: which concrete paths a pattern covers, and which patterns overlap. */

export function isPattern(path: string): boolean {
  return path.includes('.*.') || path.endsWith('.*');
}

/** Does `pattern` (with `*` instances) cover the concrete or pattern path `path`? */
export function covers(pattern: string, path: string): boolean {
  if (pattern === path) return true;
  const a = pattern.split('.');
  const b = path.split('.');
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] === '*' && /^[1-9][0-9]*$/.test(b[i] as string)) continue;
    return false;
  }
  return true;
}

/** The paths of `claimed` each path is affected by: itself and every pattern that covers it. */
export function coveringPaths(claimed: readonly string[]): Map<string, string[]> {
  const patterns = claimed.filter(isPattern);
  const out = new Map<string, string[]>();
  for (const p of claimed) {
    const list = [p];
    for (const w of patterns) if (w !== p && covers(w, p)) list.push(w);
    out.set(p, list);
  }
  return out;
}
