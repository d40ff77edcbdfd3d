package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerProvider is serve's tracer provider from the standard OpenTelemetry
// variables: OTLP over HTTP when OTEL_TRACES_EXPORTER is otlp, or is unset
// while an OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); the exporter reads the rest of the
// OTEL_EXPORTER_OTLP_* variables, the SDK OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER. Without them, or with
// none, it is nil: no spans. shutdown flushes the spans. The exporter's
// errors go to logger, among serve's other lines.
func tracerProvider(ctx context.Context, logger *slog.Logger) (provider trace.TracerProvider, shutdown func(context.Context) error, err error) {
	exporter := os.Getenv("OTEL_TRACES_EXPORTER")
	if exporter == "" && (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	switch exporter {
	case "", "none":
		return nil, func(context.Context) error { return nil }, nil
	case "otlp":
	default:
		return nil, nil, usagef("OTEL_TRACES_EXPORTER %q: hookrelay exports otlp (over HTTP) or none", exporter)
	}
	client, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(serviceName())))
	if err != nil {
		return nil, nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.WarnContext(ctx, "exporting traces failed", "error", err)
	}))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(client), sdktrace.WithResource(res))
	return sdk, sdk.Shutdown, nil
}

// serviceName is OTEL_SERVICE_NAME, or hookrelay.
func serviceName() string {
	if name := os.Getenv("OTEL_SERVICE_NAME"); name != "" {
		return name
	}
	return "hookrelay"
}
