// DOM helpers. Text is always set with text nodes (never parsed as HTML), so a device-reported string
// such as "<img onerror=…>" is shown as the characters it is.

/** h('td', {class: 'x'}, 'text', child) → element. Attributes are set with setAttribute; `on*` take functions. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table from column names and rows of cells (strings or nodes). */
export function table(columns, rows, attrs = {}) {
  return h(
    'table',
    attrs,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((c) => h('th', {}, c)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          {},
          r.map((c) => h('td', {}, c)),
        ),
      ),
    ),
  );
}

export const json = (v) => h('pre', { class: 'mono' }, JSON.stringify(v, null, 2));
export const errorBox = (err) => h('p', { class: 'error', role: 'alert' }, String(err?.message ?? err));
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

const SVG_NS = 'http://www.w3.org/2000/svg';

/** svg('line', {x1: 0, …}, child) → SVG element; like h(), text only ever as text nodes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}
