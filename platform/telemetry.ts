import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface Telemetry {
  resource: Resource;
  /** The processor workflow spans are exported through (Temporal's workflow sink). */
  spanProcessor: SpanProcessor;
  shutdown(): Promise<void>;
}

/**
 * Configures the OpenTelemetry SDK for an entry point. Spans are always created (so logs carry
 * trace ids); they are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
export function startTelemetry(
  serviceName: string,
  endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
): Telemetry {
  const resource = new Resource({ [ATTR_SERVICE_NAME]: serviceName });
  const spanProcessor = endpoint ? new BatchSpanProcessor(new OTLPTraceExporter()) : undefined;
  const sdk = new NodeSDK({
    resource,
    spanProcessors: spanProcessor ? [spanProcessor] : [],
    instrumentations: [],
  });
  sdk.start();
  return {
    resource,
    spanProcessor: spanProcessor ?? new NoopSpanProcessor(),
    shutdown: () => sdk.shutdown(),
  };
}
