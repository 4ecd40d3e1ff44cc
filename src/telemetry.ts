// Metrics and traces, both off by default: see docs/metrics.md and docs/tracing.md.
import { existsSync } from 'node:fs';
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { TelemetryOptions, WorkerOptions } from '@temporalio/worker';

export class TelemetryConfigError extends Error {
  override name = 'TelemetryConfigError';
}

// ---- Metrics ----

/**
 * WORKER_METRICS_BIND (host:port, e.g. 127.0.0.1:9464): where the worker serves its
 * SDK metrics and the project's counters for Prometheus, at /metrics. Unset: no metrics.
 */
export function metricsBindFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const bind = env.WORKER_METRICS_BIND?.trim();
  if (!bind) return undefined;
  if (!/^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$/.test(bind)) {
    throw new TelemetryConfigError(
      `WORKER_METRICS_BIND must be host:port, such as 127.0.0.1:9464 (got '${bind}')`,
    );
  }
  return bind;
}

/** The telemetry part of the project's one Runtime.install: a Prometheus endpoint if configured. */
export function runtimeTelemetryOptions(env: NodeJS.ProcessEnv = process.env): TelemetryOptions | undefined {
  const bindAddress = metricsBindFromEnv(env);
  // Counters end in _total, as Prometheus names them.
  return bindAddress ? { metrics: { prometheus: { bindAddress, countersTotalSuffix: true } } } : undefined;
}

// ---- Traces ----

export type TracesExporter = 'otlp' | 'console';

/**
 * OpenTelemetry's own variables: OTEL_TRACES_EXPORTER=console prints spans;
 * OTEL_TRACES_EXPORTER=otlp, or an OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, sends them over
 * OTLP/HTTP. Unset (or `none`): no tracing.
 */
export function tracesExporterFromEnv(env: NodeJS.ProcessEnv = process.env): TracesExporter | undefined {
  const named = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (named === 'none') return undefined;
  if (named === 'console' || named === 'otlp') return named;
  if (named) {
    throw new TelemetryConfigError(`OTEL_TRACES_EXPORTER must be otlp, console or none (got '${named}')`);
  }
  return env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
    ? 'otlp'
    : undefined;
}

export interface Tracing {
  provider: NodeTracerProvider;
  spanProcessor: SpanProcessor;
  resource: Resource;
}

let active: Tracing | undefined;

/**
 * Registers a NodeTracerProvider for this process, once. Registering gives the SDK's
 * interceptors an async context manager: without it every span starts a trace of its own.
 * Tests pass their own span processor.
 */
export function startTracing(exporter: TracesExporter | SpanProcessor): Tracing {
  if (active) return active;
  if (process.env.OTEL_LOG_LEVEL) diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
  const spanProcessor =
    exporter === 'console'
      ? new SimpleSpanProcessor(new ConsoleSpanExporter())
      : exporter === 'otlp'
        ? new BatchSpanProcessor(new OTLPTraceExporter()) // reads OTEL_EXPORTER_OTLP_* itself
        : exporter;
  const resource = new Resource({ 'service.name': process.env.OTEL_SERVICE_NAME || 'money-transfer' });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  active = { provider, spanProcessor, resource };
  return active;
}

/** Sends the spans still buffered and stops tracing; a no-op when tracing is off. */
export async function shutdownTracing(): Promise<void> {
  const tracing = active;
  active = undefined;
  await tracing?.provider.shutdown();
}

/** The client's interceptors: a span around each start, query, update..., passed on in headers. */
export function tracingClientInterceptors(
  exporter: TracesExporter | undefined,
): ClientInterceptors | undefined {
  if (!exporter) return undefined;
  startTracing(exporter);
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/** The workflow interceptor module; the workflow bundle has to include it (tools/bundle.ts). */
export const TRACING_WORKFLOW_MODULES = [
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
];

/** The prebuilt bundle with the tracing interceptors, beside the plain one `npm run build` makes. */
export function tracingBundlePath(bundlePath: string): string {
  return bundlePath.replace(/\.js$/, '-tracing.js');
}

type WorkflowSource = { workflowsPath: string } | { workflowBundle: { codePath: string } };

/**
 * The worker options for tracing: activity interceptors, the sink the workflow's spans
 * leave the sandbox through, and workflow code that has the workflow interceptors. A
 * prebuilt bundle cannot gain interceptors at start, so a tracing worker runs the
 * tracing bundle `npm run build` writes beside the plain one.
 */
export function withTracing(
  exporter: TracesExporter | SpanProcessor | undefined,
  source: WorkflowSource,
): Pick<WorkerOptions, 'interceptors' | 'sinks'> & WorkflowSource {
  if (!exporter) return source;
  const { spanProcessor, resource } = startTracing(exporter);
  let code: WorkflowSource = source;
  if ('workflowBundle' in source) {
    const codePath = tracingBundlePath(source.workflowBundle.codePath);
    if (!existsSync(codePath)) {
      throw new TelemetryConfigError(`Tracing needs the prebuilt ${codePath}: run \`npm run build\` first.`);
    }
    code = { workflowBundle: { codePath } };
  }
  return {
    ...code,
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      // A prebuilt bundle has them already (and the worker ignores them next to one).
      ...('workflowsPath' in source ? { workflowModules: TRACING_WORKFLOW_MODULES } : {}),
    },
    sinks: { exporter: makeWorkflowExporter(spanProcessor, resource) },
  };
}
