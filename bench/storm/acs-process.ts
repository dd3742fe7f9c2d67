import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import { SchemaRegistry } from '../../datamodel/registry.js';
import { connect } from '../../db/client.js';
import { AcsConfig, AcsServer } from '../../executor/cwmp/acs.js';
import { ACS_WRITES } from '../../executor/cwmp/service.js';
import { NonceIssuer, parseDigestAuthorization, verifyDigest } from '../../executor/cwmp/digest.js';
import { buildInformResponse, parseEnvelope } from '../../executor/cwmp/soap.js';
import { WriteBatcher } from '../../executor/persist.js';
import { createSchemaGate } from '../../executor/schema-gate.js';
import { CredentialCipher } from '../../executor/secrets.js';
import { createLogger } from '../../platform/logger.js';
import { SimFleet } from '../../sim/cwmp/fleet.js';

/**
 * Child process of the storm benchmark: either the real ACS (`acs`) or the bare protocol server
 * (`bare`: the same HTTP exchange with the digest challenge, parses the Inform and answers; no
 * persistence, no session logic). Reports RSS (sampled peak) and CPU time over IPC.
 */
const [mode, dbUrl, secret, maxSessions] = process.argv.slice(2);
let peakRss = process.memoryUsage.rss();
/** V8's share of the peak: heap (used and reserved) and memory outside it (sockets' buffers). */
let atPeak = process.memoryUsage();
setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss <= peakRss) return;
  peakRss = rss;
  atPeak = process.memoryUsage();
}, 100).unref();
// Event-loop stalls: a stalled loop accepts no connections, and the listen queue overflows.
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
// STORM_MEMLOG=<file>: a line of memory figures per second (where the peak comes from: which heap
// space, or buffers outside the heap).
const memlog = process.env.STORM_MEMLOG;
if (memlog) {
  const t0 = Date.now();
  const mb = (n: number) => Math.round(n / 2 ** 20);
  setInterval(() => {
    const m = process.memoryUsage();
    const spaces = v8.getHeapSpaceStatistics().map((x) => [x.space_name, mb(x.space_size)]);
    const line = { t: Date.now() - t0, rss: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal) };
    appendFileSync(
      memlog,
      `${JSON.stringify({ ...line, external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), ...Object.fromEntries(spaces) })}\n`,
    );
  }, 1000).unref();
}

async function main(): Promise<void> {
  let url: string;
  let stats: () => Record<string, number> = () => ({});
  if (mode === 'acs') {
    const db = connect(dbUrl!, { max: 12, applicationName: 'storm-acs' });
    const log = createLogger({ name: 'storm-acs', level: 'error' });
    // Configured as `fleetbrain executor` runs it.
    const batcher = new WriteBatcher(db.db, ACS_WRITES);
    const acs = new AcsServer(
      {
        pool: db.pool,
        db: db.db,
        batcher,
        gate: createSchemaGate(new SchemaRegistry()),
        cipher: new CredentialCipher(secret!),
        log,
      },
      { port: 0, host: '127.0.0.1', maxSessions: Number(maxSessions ?? 1000), retryAfterSeconds: 1 },
    );
    await acs.listen();
    url = acs.url;
    stats = () => ({
      ...acs.stats,
      flushes: batcher.stats.flushes,
      jobs: batcher.stats.jobs,
      eventsWritten: batcher.stats.events,
    });
  } else {
    const nonces = new NonceIssuer('fleetbrain');
    let served = 0;
    const server = http.createServer({ keepAlive: true }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (body.length === 0) return void res.writeHead(204).end();
        const c = parseDigestAuthorization(req.headers.authorization);
        const password = c ? SimFleet.credentialsFor('sim-secret', c.username).password : '';
        if (!c || nonces.check(c.nonce) !== 'ok' || !verifyDigest(c, password, 'POST'))
          return void res
            .writeHead(401, { 'www-authenticate': nonces.challenge(), 'content-length': '0' })
            .end();
        const env = parseEnvelope(body);
        served += 1;
        const out = buildInformResponse({ ns: env.ns, id: env.id });
        res
          .writeHead(200, { 'content-type': 'text/xml', 'content-length': String(Buffer.byteLength(out)) })
          .end(out);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', AcsConfig.parse({}).backlog, () => r()));
    const a = server.address() as { port: number };
    url = `http://127.0.0.1:${a.port}/`;
    stats = () => ({ informs: served });
  }
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats') {
      const cpu = process.cpuUsage();
      process.send?.({
        rss: process.memoryUsage.rss(),
        peakRss,
        peakHeapTotal: atPeak.heapTotal,
        peakHeapUsed: atPeak.heapUsed,
        cpuMs: (cpu.user + cpu.system) / 1000,
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
        ...stats(),
      });
    } else if (m.cmd === 'exit') process.exit(0);
  });
  process.send?.({ ready: true, url });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
