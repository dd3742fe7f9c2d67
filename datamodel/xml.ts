import { readFileSync } from 'node:fs';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** Import failure that names the file, the line (when known) and what was expected. */
export class DataModelImportError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly expected: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${expected}`);
    this.name = 'DataModelImportError';
  }
}

/** One element in document order: tag name, attributes, children (text nodes dropped). */
export interface XmlElement {
  tag: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  // Internal DTD entities (tr-106-types.xml uses &octet; etc. inside patterns) must be expanded.
  processEntities: true,
  htmlEntities: false,
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Descriptions are never kept; skipping their content keeps the tree small.
  stopNodes: ['*.description'],
});

function localName(tag: string): string {
  const i = tag.indexOf(':');
  return i < 0 ? tag : tag.slice(i + 1);
}

function convert(nodes: OrderedNode[]): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of nodes) {
    for (const key of Object.keys(node)) {
      if (key === ':@' || key === '#text' || key === '#comment') continue;
      if (key === 'description') continue;
      const kids = node[key];
      out.push({
        tag: localName(key),
        attrs: node[':@'] ?? {},
        children: Array.isArray(kids) ? convert(kids as OrderedNode[]) : [],
      });
    }
  }
  return out;
}

/** Parses an XML text; malformed input throws DataModelImportError with line and expectation. */
export function parseXml(text: string, file: string): XmlElement {
  const check = XMLValidator.validate(text, { allowBooleanAttributes: true });
  if (check !== true) {
    // The validator reports a truncated document as "Invalid '[...open tags...]' found" at line 1;
    // say instead where the file ended and which closing tag was expected.
    const open = /^Invalid '(\[[\s\S]*\])' found/.exec(check.err.msg);
    if (check.err.code === 'InvalidXml' && open) {
      let tags: string[] = [];
      try {
        tags = JSON.parse(open[1] as string) as string[];
      } catch {
        tags = [];
      }
      const last = tags[tags.length - 1] ?? 'root element';
      throw new DataModelImportError(
        file,
        text.split('\n').length,
        `malformed XML: unexpected end of file, expected </${last}> to close ${tags.map((t) => `<${t}>`).join(' > ')}`,
      );
    }
    throw new DataModelImportError(
      file,
      check.err.line,
      `malformed XML: ${check.err.msg} (${check.err.code})`,
    );
  }
  const nodes = parser.parse(text) as OrderedNode[];
  const roots = convert(nodes);
  const root = roots[0];
  if (!root) throw new DataModelImportError(file, 1, 'expected a root element');
  return root;
}

/** 1-based line of the first occurrence of `snippet` in `text`, for errors about a parsed element. */
export function lineOf(text: string, snippet: string): number | undefined {
  const at = text.indexOf(snippet);
  if (at < 0) return undefined;
  let line = 1;
  for (let i = 0; i < at; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

export interface XmlFile {
  root: XmlElement;
  text: string;
}

export function readXmlFile(file: string, displayName: string): XmlFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataModelImportError(displayName, undefined, `cannot read file: ${(err as Error).message}`);
  }
  return { root: parseXml(text, displayName), text };
}
