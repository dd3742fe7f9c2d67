import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cases } from './fixtures/cases.js';
import { opaBin } from './opa-bin.js';

/** Runs `opa test policies/` as part of the test command, and checks the Rego tests cover every rule. */

const run = promisify(execFile);
const policiesDir = path.dirname(fileURLToPath(import.meta.url));
const regoDir = path.join(policiesDir, 'rego');

async function regoFiles(test: boolean): Promise<Array<{ name: string; text: string }>> {
  const names = (await readdir(regoDir)).filter(
    (n) => n.endsWith('.rego') && n.endsWith('_test.rego') === test,
  );
  return Promise.all(
    names.map(async (name) => ({ name, text: await readFile(path.join(regoDir, name), 'utf8') })),
  );
}

interface OpaTestResult {
  package: string;
  name: string;
  fail?: boolean;
  error?: unknown;
  skip?: boolean;
}

describe('opa test policies/', () => {
  it('passes every Rego test, and runs as many as the test files define', async () => {
    const declared = (await regoFiles(true)).flatMap((f) =>
      [...f.text.matchAll(/^test_\w+/gm)].map((m) => m[0]),
    );
    const { stdout } = await run(opaBin(), ['test', '--format=json', policiesDir], {
      maxBuffer: 64 << 20,
    }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`opa test failed:\n${err.stderr ?? ''}\n${(err.stdout ?? '').slice(0, 4000)}`);
    });
    const results = JSON.parse(stdout) as OpaTestResult[];
    const failed = results.filter((r) => r.fail || r.error || r.skip).map((r) => r.name);
    expect(failed).toEqual([]);
    expect(results.length).toBe(declared.length);
    expect(new Set(results.map((r) => r.name.replace(/^data\.fleetbrain_test\./, '')))).toEqual(
      new Set(declared),
    );
  });

  it('has a Rego test for every fixture case', async () => {
    const text = (await regoFiles(true)).map((f) => f.text).join('\n');
    for (const name of Object.keys(cases)) expect(text, name).toContain(`test_${name} if matches("${name}")`);
  });

  it('covers every deny code with at least one allow and one deny case', async () => {
    const codes = new Set(
      (await regoFiles(false)).flatMap((f) =>
        [...f.text.matchAll(/"code": "(\w+)"/g)].map((m) => m[1] ?? ''),
      ),
    );
    expect(codes.size).toBeGreaterThan(20);
    const missing: string[] = [];
    for (const code of codes) {
      const exercised = Object.values(cases).filter((c) => c.rules.includes(code));
      const denies = exercised.some((c) => !c.expect.allow && c.expect.deny_codes.includes(code));
      const allows = exercised.some((c) => c.expect.allow);
      if (!denies || !allows)
        missing.push(`${code}: ${denies ? '' : 'no deny case '}${allows ? '' : 'no allow case'}`);
    }
    expect(missing).toEqual([]);
  });

  it('keeps Rego statement coverage above 95%', async () => {
    const { stdout } = await run(opaBin(), ['test', '--coverage', policiesDir], { maxBuffer: 64 << 20 });
    expect((JSON.parse(stdout) as { coverage: number }).coverage).toBeGreaterThan(95);
  });
});
