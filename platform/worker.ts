import path from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import {
  bundleWorkflowCode,
  DefaultLogger,
  type LogLevel,
  NativeConnection,
  Runtime,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import type { Logger } from './logger.js';
import type { ActivityDeps } from '../activities/index.js';
import { createActivities } from '../activities/index.js';
import type { TemporalYaml } from './config.js';
import { repoRoot } from './paths.js';
import type { Telemetry } from './telemetry.js';

const levels: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
};

/**
 * Routes the Temporal SDK's own logs (and activity context logs) into our JSON logger. Must run
 * before the first worker or native connection of the process; the SDK allows it once.
 */
export function installTemporalRuntime(logger: Logger, level = 'warn'): void {
  const sdkLogger = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(levels[level] ?? 'WARN', ({ level: l, message, meta }) => {
      const method =
        l === 'TRACE'
          ? 'trace'
          : l === 'DEBUG'
            ? 'debug'
            : l === 'INFO'
              ? 'info'
              : l === 'WARN'
                ? 'warn'
                : 'error';
      sdkLogger[method](meta ?? {}, message);
    }),
  });
}

export const workflowsPath = path.join(repoRoot, 'workflows', 'index.ts');
export const workflowInterceptorsPath = path.join(repoRoot, 'workflows', 'interceptors.ts');

/** Bundles the workflow code once (webpack); tests and benchmarks share the bundle across workers. */
export async function bundleWorkflows(): Promise<{ code: string }> {
  return bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [workflowInterceptorsPath] });
}

export interface CreateWorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  tuning?: Partial<TemporalYaml['worker']>;
  /** Pre-built bundle; otherwise the worker bundles workflows/ itself. */
  workflowBundle?: { code: string } | { codePath: string };
  telemetry?: Telemetry;
}

export async function createWorker(
  opts: CreateWorkerOptions,
): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({ address: opts.address });
  const t = opts.tuning ?? {};
  const options: WorkerOptions = {
    connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: createActivities(opts.deps),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath }),
    interceptors: {
      workflowModules: opts.workflowBundle ? [] : [workflowInterceptorsPath],
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
    },
    // The workflow interceptors always report spans through this sink; without telemetry it drops them.
    sinks: {
      exporter: makeWorkflowExporter(
        opts.telemetry?.spanProcessor ?? new NoopSpanProcessor(),
        opts.telemetry?.resource ?? Resource.empty(),
      ),
    },
  };
  // The SDK rejects keys present with an undefined value, so tuning is copied only when set.
  if (t.maxConcurrentActivityTaskExecutions !== undefined)
    options.maxConcurrentActivityTaskExecutions = t.maxConcurrentActivityTaskExecutions;
  if (t.maxConcurrentWorkflowTaskExecutions !== undefined)
    options.maxConcurrentWorkflowTaskExecutions = t.maxConcurrentWorkflowTaskExecutions;
  if (t.maxCachedWorkflows !== undefined) options.maxCachedWorkflows = t.maxCachedWorkflows;
  if (t.shutdownGraceTimeSeconds !== undefined) options.shutdownGraceTime = `${t.shutdownGraceTimeSeconds}s`;
  const worker = await Worker.create(options);
  return { worker, connection };
}
