// Metrics and traces, both off by default: see docs/metrics.md and docs/tracing.md.
// OpenTelemetry is required only once tracing starts: its 319 modules cost the worker
// about 80 ms and 7 MB at start (docs/benchmark.md), and most processes run without tracing.
import { existsSync } from 'node:fs';
import type * as OtelApi from '@opentelemetry/api';
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as Resources from '@opentelemetry/resources';
import type * as TraceBase from '@opentelemetry/sdk-trace-base';
import type * as TraceNode from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import type * as TemporalOtel from '@temporalio/interceptors-opentelemetry';
import type { TelemetryOptions, WorkerOptions } from '@temporalio/worker';

/* eslint-disable @typescript-eslint/no-require-imports */
const otel = () => ({
  api: require('@opentelemetry/api') as typeof OtelApi,
  otlp: require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp,
  resources: require('@opentelemetry/resources') as typeof Resources,
  base: require('@opentelemetry/sdk-trace-base') as typeof TraceBase,
  node: require('@opentelemetry/sdk-trace-node') as typeof TraceNode,
  temporal: require('@temporalio/interceptors-opentelemetry') as typeof TemporalOtel,
});
/* eslint-enable @typescript-eslint/no-require-imports */

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
  provider: TraceNode.NodeTracerProvider;
  spanProcessor: TraceBase.SpanProcessor;
  resource: Resources.Resource;
}

let active: Tracing | undefined;

/**
 * Registers a NodeTracerProvider for this process, once. Registering gives the SDK's
 * interceptors an async context manager: without it every span starts a trace of its own.
 * Tests pass their own span processor.
 */
export function startTracing(exporter: TracesExporter | TraceBase.SpanProcessor): Tracing {
  if (active) return active;
  const { api, base, otlp, resources, node } = otel();
  const { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } = base;
  if (process.env.OTEL_LOG_LEVEL) api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.WARN);
  const spanProcessor =
    exporter === 'console'
      ? new SimpleSpanProcessor(new ConsoleSpanExporter())
      : exporter === 'otlp'
        ? new BatchSpanProcessor(new otlp.OTLPTraceExporter()) // reads OTEL_EXPORTER_OTLP_* itself
        : exporter;
  const resource = new resources.Resource({
    'service.name': process.env.OTEL_SERVICE_NAME || 'money-transfer',
  });
  const provider = new node.NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
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
  return { workflow: [new (otel().temporal.OpenTelemetryWorkflowClientInterceptor)()] };
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
  exporter: TracesExporter | TraceBase.SpanProcessor | undefined,
  source: WorkflowSource,
): Pick<WorkerOptions, 'interceptors' | 'sinks'> & WorkflowSource {
  if (!exporter) return source;
  const { spanProcessor, resource } = startTracing(exporter);
  const {
    makeWorkflowExporter,
    OpenTelemetryActivityInboundInterceptor,
    OpenTelemetryActivityOutboundInterceptor,
  } = otel().temporal;
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
