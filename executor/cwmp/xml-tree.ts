/**
 * A fast path for turning a CWMP envelope into the same object tree fast-xml-parser builds with the
 * ACS's options (attributes as `@_name`, text trimmed and kept as strings, `#text` beside attributes
 * or children, repeated elements as arrays, the array tags always arrays). An Inform is parsed for
 * every session, and the general parser costs several times more than this walk, which is most of the
 * ACS's parsing time in a storm.
 *
 * It only takes the plain shape CPEs send: elements, attributes, text with the five XML entities and
 * a leading XML declaration. Anything else (comments, CDATA, processing instructions, other entity or
 * character references, text mixed with child elements) answers `null`, and the caller uses the general
 * parser, after its well-formedness check.
 */

type Node = Record<string, unknown>;

const XML_ENTITY: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Thrown inside the walk for a shape it leaves to the general parser. */
const NOT_PLAIN = Symbol('not plain');

function decode(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([A-Za-z0-9#]*);?/g, (_, name: string) => {
    const v = XML_ENTITY[name];
    if (v === undefined) throw NOT_PLAIN;
    return v;
  });
}

interface Open {
  name: string;
  node: Node | null;
  text: string;
  children: boolean;
}

function add(parent: Node, name: string, value: unknown, isArray: (name: string) => boolean): void {
  // Values are strings or objects, so an array here is a list of this element's occurrences.
  const prev = parent[name];
  if (prev === undefined) parent[name] = isArray(name) ? [value] : value;
  else if (Array.isArray(prev)) prev.push(value);
  else parent[name] = [prev, value];
}

/** XML names as CPEs use them (ASCII, at most one prefix); any other name goes to the general parser. */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?$/;
const ATTR = /\s+([A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;
const DECLARATION = /^<\?xml(?:\s+[A-Za-z]+\s*=\s*(?:"[^"<>]*"|'[^'<>]*'))*\s*\?>/;
/** Characters XML forbids anywhere. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const FORBIDDEN = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;

/**
 * The tree of a plain envelope, or null when it uses anything beyond the plain shape or is not
 * well-formed: tags must match, one root, names and attributes in their strict form, no duplicate
 * attribute, no forbidden character. So a non-null tree needs no separate well-formedness check,
 * and whatever is refused here meets the general validator and parser.
 */
export function plainTree(xml: string, isArray: (name: string) => boolean): Node | null {
  try {
    return walk(xml, isArray);
  } catch (err) {
    if (err === NOT_PLAIN) return null;
    throw err;
  }
}

function walk(xml: string, isArray: (name: string) => boolean): Node {
  if (FORBIDDEN.test(xml)) throw NOT_PLAIN;
  const root: Node = {};
  const stack: Open[] = [];
  let rootDone = false;
  let i = 0;
  const n = xml.length;
  if (xml.startsWith('<?')) {
    const d = DECLARATION.exec(xml);
    if (!d) throw NOT_PLAIN;
    i = d[0].length;
  }
  while (i < n) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (textEnd > i) {
      const top = stack.at(-1);
      const raw = xml.slice(i, textEnd);
      if (raw.trim() !== '') {
        if (!top || top.children) throw NOT_PLAIN;
        top.text += raw;
      }
    }
    if (lt < 0) break;
    const c = xml.charCodeAt(lt + 1);
    if (c === 0x21 /* ! */ || c === 0x3f /* ? */) throw NOT_PLAIN;
    if (c === 0x2f /* / */) {
      const gt = xml.indexOf('>', lt);
      if (gt < 0 || xml.slice(lt + 2, gt).trimEnd() !== stack.at(-1)?.name) throw NOT_PLAIN;
      close(stack, root, isArray);
      if (stack.length === 0) rootDone = true;
      i = gt + 1;
      continue;
    }
    if (rootDone) throw NOT_PLAIN; // a second root element
    // An opening tag: its end is the first '>' outside a quoted attribute value.
    let j = lt + 1;
    let quote = 0;
    for (; j < n; j++) {
      const ch = xml.charCodeAt(j);
      if (quote) {
        if (ch === quote) quote = 0;
      } else if (ch === 0x22 || ch === 0x27) quote = ch;
      else if (ch === 0x3e) break;
    }
    if (j >= n) throw NOT_PLAIN;
    const selfClosing = xml.charCodeAt(j - 1) === 0x2f;
    const inner = xml.slice(lt + 1, selfClosing ? j - 1 : j);
    let k = 0;
    while (k < inner.length && !/\s/.test(inner[k]!)) k++;
    const name = inner.slice(0, k);
    if (!NAME.test(name) || name === '__proto__' || name === 'constructor') throw NOT_PLAIN;
    let node: Node | null = null;
    if (k < inner.length) {
      ATTR.lastIndex = k;
      let end = k;
      for (let m = ATTR.exec(inner); m; m = ATTR.exec(inner)) {
        node ??= {};
        const key = `@_${m[1]}`;
        if (key in node) throw NOT_PLAIN;
        node[key] = decode(m[2] ?? m[3] ?? '');
        end = ATTR.lastIndex;
      }
      if (inner.slice(end).trim() !== '') throw NOT_PLAIN;
    }
    const parent = stack.at(-1);
    if (parent) {
      if (parent.text.trim() !== '') throw NOT_PLAIN;
      parent.children = true;
    }
    stack.push({ name, node, text: '', children: false });
    if (selfClosing) {
      close(stack, root, isArray);
      if (stack.length === 0) rootDone = true;
    }
    i = j + 1;
  }
  if (stack.length > 0 || !rootDone) throw NOT_PLAIN;
  return root;
}

function close(stack: Open[], root: Node, isArray: (name: string) => boolean): void {
  const o = stack.pop();
  if (!o) throw NOT_PLAIN;
  const text = decode(o.text.trim());
  let value: unknown;
  if (o.node === null && !o.children) value = text;
  else {
    // Attributes went in when the tag opened, children as they closed.
    const node = o.node ?? {};
    if (text !== '') node['#text'] = text;
    value = node;
  }
  const parent = stack.at(-1);
  if (parent) {
    parent.node ??= {};
    add(parent.node, o.name, value, isArray);
  } else add(root, o.name, value, isArray);
}
