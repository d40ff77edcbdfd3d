package outbox

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// TraceParent is the W3C traceparent of the span in ctx, or "" when ctx
// holds none: what PublishTx stores with the event, so that its fan-out and
// deliveries continue the publisher's trace. It needs no tracer provider:
// any span the application started is in ctx.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}
