package jobs

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookrelay/hookrelay/outbox"
)

// Tracing: an event published inside a trace carries the publisher's trace
// context (outbox.TraceParent). With a tracer provider (Config.TracerProvider),
// its fan-out and each delivery attempt are spans of that trace, and each
// request carries the attempt's traceparent, so that the receiver's trace
// goes on; without one, each request carries the publisher's traceparent as
// it is. Neither changes the body or what is signed. An event published
// outside a trace costs nothing of this.

const tracerName = "github.com/hookrelay/hookrelay/jobs"

// traceContext is the W3C propagator.
var traceContext = propagation.TraceContext{} //nolint:gochecknoglobals // stateless

// publisherContext is ctx with the remote span context of traceParent.
func publisherContext(ctx context.Context, traceParent string) context.Context {
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
}

// startAttempt starts the span of an attempt of send, when the delivery was
// published inside a trace and the relay traces, and returns the traceparent
// the request carries ("" for none) and a func that ends the span with the
// attempt's outcome.
func startAttempt(ctx context.Context, tracer trace.Tracer, send *outbox.Send, attempt int) (string, func(*outcome)) {
	if send.TraceParent == "" {
		return "", func(*outcome) {}
	}
	if tracer == nil {
		return send.TraceParent, func(*outcome) {}
	}
	ctx, span := tracer.Start(publisherContext(ctx, send.TraceParent), "hookrelay.deliver", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("hookrelay.delivery_id", send.DeliveryID),
			attribute.String("hookrelay.hook_id", send.Hook.ID),
			attribute.Int("hookrelay.attempt", attempt),
			attribute.String("http.request.method", http.MethodPost),
		))
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier["traceparent"], func(out *outcome) {
		if out.result.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", out.result.StatusCode))
		}
		if !out.succeeded() {
			span.SetStatus(codes.Error, describeResult(out.result))
		}
		span.End()
	}
}

// traceFanOut records, for each traced event of a fan-out that committed,
// a span of the publisher's trace from start to now.
func traceFanOut(ctx context.Context, tracer trace.Tracer, traced []*outbox.TracedEvent, start trace.SpanStartEventOption) {
	if tracer == nil {
		return
	}
	for _, event := range traced {
		_, span := tracer.Start(publisherContext(ctx, event.TraceParent), "hookrelay.fanout", start,
			trace.WithAttributes(
				attribute.String("hookrelay.event_id", event.ID),
				attribute.String("hookrelay.event_type", event.Type),
				attribute.Int("hookrelay.deliveries", event.Deliveries),
			))
		span.End()
	}
}
