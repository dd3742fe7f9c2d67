import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Benchmark, machine } from './bench.js';

const here = path.dirname(fileURLToPath(import.meta.url));

async function available(): Promise<string[]> {
  const files = await readdir(here);
  return files
    .filter((f) => f.endsWith('.bench.ts'))
    .map((f) => f.replace(/\.bench\.ts$/, ''))
    .sort();
}

function printTable(rows: Array<Record<string, string | number>>): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0] ?? {});
  const cell = (v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(6)).toString() : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => `| ${vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(line(cols));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const names = await available();
  if (!name || !names.includes(name)) {
    console.error(`usage: npm run bench -- <name> [args]\navailable: ${names.join(', ')}`);
    process.exit(2);
  }
  const mod = (await import(pathToFileURL(path.join(here, `${name}.bench.ts`)).href)) as {
    default: Benchmark;
  };
  const result = await mod.default(args);
  printTable(result.table);
  for (const n of result.notes ?? []) console.log(n);
  const out = { name, at: new Date().toISOString(), machine: machine(), metrics: result.metrics };
  await mkdir(path.join(here, 'results'), { recursive: true });
  const file = path.join(here, 'results', `${name}${result.partial ? '.partial' : ''}.json`);
  await writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nmetrics: ${JSON.stringify(result.metrics)}\nwritten: ${path.relative(process.cwd(), file)}`);
  // Benchmarks may leave pools/servers behind on failure paths; the process is done.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
