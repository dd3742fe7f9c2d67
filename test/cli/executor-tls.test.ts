import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acsConfigFromOptions, type ExecutorOptions } from '../../cli/executor.js';
import { authorize, parseChallenge } from '../../executor/cwmp/digest.js';
import { ConfigError } from '../../platform/config.js';
import { freePort, portOpen, waitFor } from '../../platform/process.js';
import { repoRoot } from '../../platform/paths.js';
import { createTestDatabase } from '../support/db.js';
import { DEVICE_ID, inform } from '../executor/fixtures.js';

const NS = 'urn:dslforum-org:cwmp-1-2';
const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-exec-tls-'));
const KEY = path.join(dir, 'key.pem');
const CERT = path.join(dir, 'cert.pem');

/** A self-signed certificate for 127.0.0.1, made for this test run with openssl. */
function selfSigned(): void {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
      .concat(['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
      .concat(['-keyout', KEY, '-out', CERT]),
    { stdio: 'ignore' },
  );
}

// Only the ACS options matter here (the command has others, e.g. for USP).
const base = {
  host: '127.0.0.1',
  port: '0',
  auth: 'digest',
  unknownDevices: 'register',
  maxSessions: '2000',
  admissionWaitMs: '20000',
} as ExecutorOptions;

/**
 * `fleetbrain executor …` as a real process, through the entry point operators run (bin/fleetbrain,
 * which adds the executor's Node flags); resolves with its exit code and stderr when it ends.
 */
function cli(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; done: Promise<{ code: number | null; err: string }> } {
  const child = spawn(path.join(repoRoot, 'bin', 'fleetbrain'), ['executor', ...args], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  // The log (stdout) and errors (stderr), for the failure message.
  for (const s of [child.stdout, child.stderr])
    s?.on('data', (c: Buffer) => {
      err += c.toString();
    });
  const done = new Promise<{ code: number | null; err: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, err })),
  );
  return { child, done };
}

async function stopped(p: ReturnType<typeof cli>) {
  p.child.kill('SIGTERM');
  return p.done;
}

function post(
  mod: typeof http | typeof https,
  url: string,
  body: string,
  headers: Record<string, string>,
  ca?: string,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      { method: 'POST', ca, agent: false, headers: { 'content-type': 'text/xml', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

describe('fleetbrain executor --tls-key/--tls-cert', () => {
  beforeAll(() => selfSigned());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads both PEM files into the ACS configuration', () => {
    const c = acsConfigFromOptions({ ...base, tlsKey: KEY, tlsCert: CERT });
    expect(c.tls?.key).toBe(readFileSync(KEY, 'utf8'));
    expect(c.tls?.cert).toContain('BEGIN CERTIFICATE');
    expect(acsConfigFromOptions(base).tls).toBeUndefined();
  });

  it('refuses one of the two alone, an unreadable file, and basic auth without TLS, with a specific error', () => {
    expect(() => acsConfigFromOptions({ ...base, tlsKey: KEY })).toThrow(
      new ConfigError(
        '--tls-key given without --tls-cert: TLS needs both the private key and the certificate',
      ),
    );
    expect(() => acsConfigFromOptions({ ...base, tlsCert: CERT })).toThrow(
      /^--tls-cert given without --tls-key/,
    );
    const missing = path.join(dir, 'nope.pem');
    expect(() => acsConfigFromOptions({ ...base, tlsKey: missing, tlsCert: CERT })).toThrow(
      new ConfigError(`--tls-key ${missing}: cannot be read (ENOENT)`),
    );
    expect(() => acsConfigFromOptions({ ...base, auth: 'basic' })).toThrow(
      /--auth basic needs --tls-key and --tls-cert/,
    );
    expect(acsConfigFromOptions({ ...base, auth: 'basic', tlsKey: KEY, tlsCert: CERT }).auth).toBe('basic');
    expect(() => acsConfigFromOptions({ ...base, maxSessions: 'many' })).toThrow(ConfigError);
    expect(() => acsConfigFromOptions({ ...base, admissionWaitMs: '-1' })).toThrow(/admissionWaitMs/);
  });

  describe('as a process', () => {
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    let env: Record<string, string>;
    beforeAll(async () => {
      db = await createTestDatabase();
      env = { DATABASE_URL: db.url, FLEETBRAIN_CREDENTIAL_KEY: 'executor-tls-test-credential-key' };
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('serves the ACS over HTTPS with digest auth, and nothing over plain HTTP', async () => {
      const port = await freePort();
      const creds = path.join(dir, 'creds.json');
      writeFileSync(
        creds,
        JSON.stringify([{ deviceId: DEVICE_ID, username: DEVICE_ID, password: 'pw-tls' }]),
      );
      const p = cli(['--port', String(port), '--tls-key', KEY, '--tls-cert', CERT, '--provision', creds], {
        ...env,
        FLEETBRAIN_EXECUTOR_HEAP_MB: '384',
      });
      try {
        await Promise.race([
          waitFor('executor listening', () => portOpen(port), 60_000),
          p.done.then((r) => {
            throw new Error(`executor exited ${r.code}: ${r.err}`);
          }),
        ]);
        // The entry point exec's node itself, with the executor's heap budget.
        const argv = readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8').split('\0');
        expect(argv).toContain('--max-old-space-size=384');
        const url = `https://127.0.0.1:${port}/`;
        const ca = readFileSync(CERT, 'utf8');
        const body = inform(NS, { id: 'tls-cli-1' });
        const challenge = await post(https, url, body, {}, ca);
        expect(challenge.status).toBe(401);
        const c = parseChallenge(String(challenge.headers['www-authenticate']));
        expect(c).not.toBeNull();
        const ok = await post(
          https,
          url,
          body,
          { authorization: authorize(c!, { username: DEVICE_ID, password: 'pw-tls' }, 'POST', '/') },
          ca,
        );
        expect({
          status: ok.status,
          log: ok.status === 200 ? '' : `${ok.body}\n${(await stopped(p)).err}`,
        }).toEqual({
          status: 200,
          log: '',
        });
        expect(ok.body).toContain('InformResponse');
        const rows = await db.pool.query(
          `SELECT count(*)::int AS n FROM device_events WHERE device_id = $1 AND kind = 'inform'`,
          [DEVICE_ID],
        );
        expect(rows.rows[0].n).toBe(1);
        // The same port does not speak cleartext HTTP.
        await expect(post(http, `http://127.0.0.1:${port}/`, body, {})).rejects.toThrow();
      } finally {
        p.child.kill('SIGTERM');
        await p.done;
      }
    });

    it('exits with a configuration error for a key without a certificate, basic auth without TLS, or a bad heap budget', async () => {
      const one = await cli(['--port', String(await freePort()), '--tls-key', KEY], env).done;
      expect(one.code).toBe(1);
      expect(one.err).toContain('configuration error: --tls-key given without --tls-cert');
      const basic = await cli(['--port', String(await freePort()), '--auth', 'basic'], env).done;
      expect(basic.code).toBe(1);
      expect(basic.err).toContain('--auth basic needs --tls-key and --tls-cert');
      const heap = await cli(['--port', String(await freePort())], {
        ...env,
        FLEETBRAIN_EXECUTOR_HEAP_MB: 'lots',
      }).done;
      expect(heap.code).toBe(1);
      expect(heap.err).toContain(
        "configuration error: FLEETBRAIN_EXECUTOR_HEAP_MB must be a whole number of MiB, at least 256 (got 'lots')",
      );
    });
  });
});
