import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendAudit, appendAuditBatch, verifyAudit } from '../db/audit.js';
import { connect } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';
import type { Benchmark } from './bench.js';
import { percentile } from './stats.js';

/**
 * Audit log: appends/s with concurrent writers (serialised on the advisory lock, each its own
 * transaction) and how fast `audit verify` recomputes the chain, on the embedded PostgreSQL.
 * Also batched appends (appendAuditBatch, 50 entries per transaction).
 * Args: [appends=5000] [concurrency=16]
 */
const bench: Benchmark = async (args) => {
  const [appends = 5000, concurrency = 16] = args.map(Number);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-bench-audit-'));
  chmodSync(dir, 0o755);
  const pgServer = await startPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    ephemeral: true,
  });
  const handle = connect(pgServer.url, { max: concurrency + 2 });
  try {
    await migrate(pgServer.url);
    const entry = (i: number) => ({
      actor: { id: 'bench', kind: 'system' as const },
      action: 'rollout.wave_started',
      subject: { kind: 'rollout', id: `r-${i % 50}` },
      data: {
        wave: i % 10,
        devices: 1000 + i,
        share: 0.01 * (i % 100),
        cohort: { region: 'north', tier: 'gold' },
      },
    });
    for (let i = 0; i < 50; i++) await appendAudit(handle.db, entry(i)); // warm-up
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < appends) {
          const i = next++;
          const s = performance.now();
          await appendAudit(handle.db, entry(i));
          latencies.push(performance.now() - s);
        }
      }),
    );
    const appendSec = (performance.now() - t0) / 1000;
    const b0 = performance.now();
    for (let i = 0; i < appends; i += 50) {
      await appendAuditBatch(
        handle.db,
        Array.from({ length: Math.min(50, appends - i) }, (_, k) => entry(i + k)),
      );
    }
    const batchSec = (performance.now() - b0) / 1000;
    const v0 = performance.now();
    const verified = await verifyAudit(handle.db);
    const verifySec = (performance.now() - v0) / 1000;
    if (!verified.ok)
      throw new Error(`chain broken after the benchmark: ${JSON.stringify(verified.firstBreak)}`);
    const metrics = {
      audit_appends_per_s: Math.round(appends / appendSec),
      audit_append_p50_ms: Number(percentile(latencies, 0.5).toFixed(2)),
      audit_append_p99_ms: Number(percentile(latencies, 0.99).toFixed(2)),
      audit_batch_appends_per_s: Math.round(appends / batchSec),
      audit_verify_entries_per_s: Math.round(verified.entries / verifySec),
    };
    return {
      metrics,
      table: [
        {
          measure: 'appends/s',
          value: metrics.audit_appends_per_s,
          note: `${appends} appends, ${concurrency} writers`,
        },
        {
          measure: 'append p50 (ms)',
          value: metrics.audit_append_p50_ms,
          note: 'includes waiting for the lock',
        },
        { measure: 'append p99 (ms)', value: metrics.audit_append_p99_ms, note: '' },
        {
          measure: 'batched appends/s',
          value: metrics.audit_batch_appends_per_s,
          note: '50 entries per transaction',
        },
        {
          measure: 'verify entries/s',
          value: metrics.audit_verify_entries_per_s,
          note: `${verified.entries} entries`,
        },
      ],
      notes: [
        'Embedded PostgreSQL with default settings (fsync on); one transaction per single append, so appends/s is bounded by commit latency: the lock is held through the commit.',
      ],
    };
  } finally {
    await handle.close();
    await pgServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

export default bench;
