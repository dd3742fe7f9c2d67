import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Report } from './runner.js';
import type { Proportion } from './wilson.js';

const isProp = (v: unknown): v is Proportion => typeof v === 'object' && v !== null && 'successes' in v;
const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)} %`);

/** Markdown report: the run label first (fixture runs say they are not accuracy), then metrics and cases. */
export function markdownReport(r: Report): string {
  const lines = [
    `# Eval report: ${r.suite}`,
    '',
    `> ${r.run.label}`,
    '',
    `- mode: **${r.run.mode}**`,
    `- model: ${r.run.model}`,
    `- endpoint: ${r.run.baseUrl}`,
    `- date: ${r.run.date}`,
    '',
    '## Counts',
    '',
    '| count | value |',
    '| --- | --- |',
    ...Object.entries(r.counts).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '## Metrics (95 % Wilson intervals)',
    '',
    '| metric | value | successes / n | 95 % interval |',
    '| --- | --- | --- | --- |',
    ...Object.entries(r.metrics).map(([k, v]) =>
      isProp(v)
        ? `| ${k} | ${pct(v.rate)} | ${v.successes} / ${v.n} | ${pct(v.low)} – ${pct(v.high)} |`
        : `| ${k} | ${v === null ? '—' : typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : v} | | |`,
    ),
    '',
    '## Cases',
    '',
  ];
  const cols = [...new Set(r.cases.flatMap((c) => Object.keys(c)))];
  lines.push(`| ${cols.join(' | ')} |`, `|${cols.map(() => ' --- ').join('|')}|`);
  for (const c of r.cases)
    lines.push(
      `| ${cols
        .map((k) =>
          String(c[k] ?? '')
            .replace(/\|/g, '\\|')
            .replace(/\n/g, ' '),
        )
        .join(' | ')} |`,
    );
  return `${lines.join('\n')}\n`;
}

/** Writes <dir>/<suite>.json and <dir>/<suite>.md; returns their paths. */
export function writeReport(r: Report, dir: string): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `${r.suite}.json`);
  const md = path.join(dir, `${r.suite}.md`);
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(md, markdownReport(r));
  return { json, md };
}
