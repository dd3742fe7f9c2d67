import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createLogger } from '../platform/logger.js';
import { freePort } from '../platform/process.js';
import { startTemporalDevServer } from '../platform/temporal-server.js';
import { bundleWorkflows, createWorker, installTemporalRuntime } from '../platform/worker.js';
import { probe } from '../workflows/probe.js';
import type { Benchmark } from './bench.js';
import { percentile } from './stats.js';

/**
 * Workflow starts/s and round-trip latency of a trivial workflow (one activity) on the Temporal dev
 * server (SQLite file, like `fleetbrain dev`), with one in-process worker.
 * Args: [starts=2000] [roundTrips=300] [concurrency=50]
 */
const bench: Benchmark = async (args) => {
  const [starts = 2000, roundTrips = 300, concurrency = 50] = args.map(Number);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-bench-wf-'));
  const logger = createLogger({ name: 'bench', level: 'warn' });
  installTemporalRuntime(logger, 'error');
  const server = await startTemporalDevServer({
    port: await freePort(),
    dbFile: path.join(dir, 'temporal.db'),
  });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const taskQueue = 'bench-workflow';
  const { worker, connection: workerConn } = await createWorker({
    address: server.address,
    namespace: 'default',
    taskQueue,
    deps: { logger, workerId: 'bench' },
    workflowBundle: await bundleWorkflows(),
    tuning: { maxConcurrentWorkflowTaskExecutions: 100, maxCachedWorkflows: 5000 },
  });
  const running = worker.run();
  try {
    const pool = async <T>(n: number, fn: (i: number) => Promise<T>) => {
      let next = 0;
      const out: T[] = [];
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < n) {
            const i = next++;
            out[i] = await fn(i);
          }
        }),
      );
      return out;
    };
    // Warm-up: bundle loaded, caches and connections hot.
    await pool(50, (i) =>
      client.workflow.execute(probe, {
        taskQueue,
        workflowId: `warm-${i}`,
        args: [{ id: `w${i}`, awaitAck: false }],
      }),
    );

    const t0 = performance.now();
    await pool(starts, (i) =>
      client.workflow.start(probe, {
        taskQueue,
        workflowId: `start-${i}`,
        args: [{ id: `s${i}`, awaitAck: false }],
      }),
    );
    const startSeconds = (performance.now() - t0) / 1000;
    // Let the started workflows finish before measuring latency on an idle server.
    await pool(starts, (i) => client.workflow.getHandle(`start-${i}`).result());

    const latencies = await pool(roundTrips, async (i) => {
      const s = performance.now();
      await client.workflow.execute(probe, {
        taskQueue,
        workflowId: `rt-${i}`,
        args: [{ id: `r${i}`, awaitAck: false }],
      });
      return performance.now() - s;
    });
    const metrics = {
      starts_per_s: starts / startSeconds,
      p50_ms: percentile(latencies, 0.5),
      p99_ms: percentile(latencies, 0.99),
    };
    return {
      metrics,
      table: [
        {
          measure: 'workflow starts',
          n: starts,
          concurrency,
          result: `${metrics.starts_per_s.toFixed(0)} starts/s`,
        },
        { measure: 'round trip p50', n: roundTrips, concurrency, result: `${metrics.p50_ms.toFixed(1)} ms` },
        { measure: 'round trip p99', n: roundTrips, concurrency, result: `${metrics.p99_ms.toFixed(1)} ms` },
      ],
      notes: ['dev server: temporal CLI start-dev with a SQLite file; one worker in the benchmark process'],
    };
  } finally {
    worker.shutdown();
    await running;
    await workerConn.close();
    await connection.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};
export default bench;
