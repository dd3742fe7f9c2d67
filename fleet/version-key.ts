/**
 * Sortable keys for semantic versions, computed at write time and stored in a `COLLATE "C"` column so
 * that "firmware < 3.0" is an index range scan instead of a per-row parse.
 *
 * Accepted: an optional leading "v"/"V", dot-separated numeric release components, an optional
 * "-prerelease" (dot-separated identifiers) and an optional "+build" (ignored, as in SemVer 2.0).
 * Release components are padded to three ("3.0" == "3.0.0"). Anything else has no key (null) and
 * never matches a version comparison.
 *
 * Encoding (byte-wise order equals SemVer precedence):
 * - each release component: one length character (chr(0x41 + digit count)) then its digits without
 *   leading zeros, so shorter numbers sort first and components are self-delimiting;
 * - then "-" for a pre-release (followed by its identifiers) or "." for a release: "-" < "." < "B",
 *   so 1.0.0-rc < 1.0.0 < 1.0.0.1;
 * - pre-release identifiers, each preceded by " " (lowest printable, so fewer identifiers sort
 *   first): numeric ones as "0" + length character + digits, alphanumeric ones as "a" + text (numeric
 *   identifiers sort below alphanumeric ones, as SemVer requires).
 */
const VERSION_RE =
  /^[vV]?(\d{1,60}(?:\.\d{1,60})*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$/;

function num(digits: string): string {
  const d = digits.replace(/^0+(?=\d)/, '');
  return String.fromCharCode(0x41 + d.length) + d;
}

export function versionKey(version: string): string | null {
  const m = VERSION_RE.exec(version.trim());
  if (!m) return null;
  const release = (m[1] ?? '').split('.');
  while (release.length < 3) release.push('0');
  let key = release.map(num).join('');
  const pre = m[2];
  if (pre === undefined) return `${key}.`;
  key += '-';
  for (const id of pre.split('.')) key += /^\d+$/.test(id) ? ` 0${num(id)}` : ` a${id}`;
  return key;
}

/** Orders two version strings by SemVer precedence; unparseable versions sort last. */
export function compareVersions(a: string, b: string): number {
  const ka = versionKey(a);
  const kb = versionKey(b);
  if (ka === null || kb === null) return ka === kb ? 0 : ka === null ? 1 : -1;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
