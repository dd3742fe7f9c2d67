import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadEnv, loadTemporalYaml } from '../../platform/config.js';
import { repoRoot } from '../../platform/paths.js';

const validYaml = readFileSync(path.join(repoRoot, 'temporal.yaml'), 'utf8');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fb-config-'));
function yamlFile(text: string): string {
  const f = path.join(tmp, `t${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, text);
  return f;
}

describe('configuration', () => {
  it('accepts the committed temporal.yaml and applies env overrides', () => {
    const c = loadConfig({ TEMPORAL_ADDRESS: '10.0.0.1:7000', API_PORT: '9000' });
    expect(c.temporal.address).toBe('10.0.0.1:7000');
    expect(c.env.API_PORT).toBe(9000);
    expect(c.temporal.taskQueues.workflows).toBe('fleetbrain');
  });

  it.each([
    ['API_PORT', 'abc'],
    ['API_PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['LOG_LEVEL', 'loud'],
    ['OPA_URL', 'not a url'],
    ['TEMPORAL_ADDRESS', 'no-port'],
  ])('rejects env %s=%s naming the key', (key, value) => {
    expect(() => loadEnv({ [key]: value })).toThrowError(
      new RegExp(`^invalid environment variable ${key}: `),
    );
  });

  it.each([
    [
      'a wrong type',
      validYaml.replace('maxCachedWorkflows: 2000', 'maxCachedWorkflows: lots'),
      'worker.maxCachedWorkflows',
    ],
    ['a missing key', validYaml.replace(/^namespace: default\n/m, ''), 'namespace'],
    ['an unknown key', `${validYaml}\nbogus: 1\n`, '(root)'],
    ['a bad port', validYaml.replace('uiPort: 8233', 'uiPort: 0'), 'devServer.uiPort'],
  ])('rejects temporal.yaml with %s naming the key', (_what, text, key) => {
    const err = (() => {
      try {
        loadTemporalYaml(yamlFile(text));
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`key ${key}`);
    expect(err.message).not.toContain('\n');
  });

  it('rejects malformed YAML with one line', () => {
    expect(() => loadTemporalYaml(yamlFile('address: [unclosed\n  - x: :'))).toThrowError(
      /is not valid YAML/,
    );
  });

  it('the CLI stops start-up with a one-line error naming the key', { timeout: 150_000 }, () => {
    const res = spawnSync(path.join(repoRoot, 'bin', 'fleetbrain'), ['api'], {
      env: { ...process.env, API_PORT: 'eighty', DATABASE_URL: 'postgres://x@127.0.0.1:1/x' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(res.status).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/configuration error: invalid environment variable API_PORT: /);
  });

  it('the CLI names the temporal.yaml key too', { timeout: 150_000 }, () => {
    const bad = yamlFile(validYaml.replace('port: 7233', 'port: seven'));
    const res = spawnSync(path.join(repoRoot, 'bin', 'fleetbrain'), ['worker'], {
      env: { ...process.env, TEMPORAL_YAML: bad },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(res.status).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/devServer\.port/);
  });
});
