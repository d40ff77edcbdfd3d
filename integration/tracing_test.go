package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// TestTracing: an event published inside the application's span is fanned
// out and delivered in the same trace (the fan-out span, the failed attempt's
// span and the retried one's), each request carries its attempt's
// traceparent, and neither the body nor the signatures change.
func TestTracing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exporter := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	var firsts firstTimes
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if firsts.first(r.Header.Get("webhook-id")) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	bundle := setupPipeline(t, &jobs.Config{TracerProvider: provider, RetrySchedule: jobs.RetryScheduleDefault})
	hook := bundle.createHook(t, rec.URL, "*")

	// The application's sign-up, traced by its own tracer.
	appCtx, signup := provider.Tracer("app").Start(ctx, "signup")
	require.NoError(t, pgx.BeginFunc(appCtx, bundle.pool, func(tx pgx.Tx) error {
		_, err := bundle.store.PublishTx(appCtx, tx, &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u1"}})
		return err
	}))
	signup.End()
	requests := rec.waitFor(t, time.Minute, func(r []received) bool { return len(r) == 2 })
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)

	trace := signup.SpanContext().TraceID()
	var fanOut, attempts []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		fanOut, attempts = nil, nil
		for _, s := range exporter.GetSpans().Snapshots() {
			if s.SpanContext().TraceID() != trace {
				continue
			}
			switch s.Name() {
			case "hookrelay.fanout":
				fanOut = append(fanOut, s)
			case "hookrelay.deliver":
				attempts = append(attempts, s)
			}
		}
		return len(fanOut) == 1 && len(attempts) == 2
	}, 10*time.Second, 20*time.Millisecond, "the fan-out and both attempts are spans of the sign-up's trace")
	require.Equal(t, signup.SpanContext().SpanID(), fanOut[0].Parent().SpanID())
	slices.SortFunc(attempts, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	require.Equal(t, codes.Error, attempts[0].Status().Code, "the failed attempt")
	require.Equal(t, codes.Unset, attempts[1].Status().Code, "the retried one")
	for i, attempt := range attempts {
		require.Equal(t, signup.SpanContext().SpanID(), attempt.Parent().SpanID())
		require.Equal(t, fmt.Sprintf("00-%s-%s-01", trace, attempt.SpanContext().SpanID()), requests[i].Header.Get("traceparent"),
			"the receiver's trace goes on from the attempt")
		require.Equal(t, 1, verifyStandardSignature(t, hook.SigningKey, requests[i]))
		require.True(t, verifyLogtoSignature(hook.SigningKey, requests[i]))
		var body map[string]any
		require.NoError(t, json.Unmarshal(requests[i].Body, &body))
		require.ElementsMatch(t, []string{"hookId", "event", "createdAt", "eventId", "data"}, keysOf(body), "the body is unchanged")
	}
}

// TestTraceParentWithoutTracing: a SQL publisher passes its trace context
// in a setting; a relay that does not trace sends it on as it is; an event
// published outside a trace, or with a malformed context, sends none.
func TestTraceParentWithoutTracing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := newReceiver(t, nil)
	bundle := setupPipeline(t, nil)
	bundle.createHook(t, rec.URL, "*")
	const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, setting := range []string{traceParent, "not-a-traceparent", ""} {
		require.NoError(t, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('hookrelay.traceparent', $1, true)", setting); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "SELECT hookrelay.publish('User.Created', $1)", fmt.Sprintf(`{"setting": %q}`, setting))
			return err
		}))
	}
	requests := rec.waitFor(t, time.Minute, func(r []received) bool { return len(r) == 3 })
	for _, r := range requests {
		var body struct{ Data struct{ Setting string } }
		require.NoError(t, json.Unmarshal(r.Body, &body))
		if body.Data.Setting == traceParent {
			require.Equal(t, traceParent, r.Header.Get("traceparent"))
		} else {
			require.Empty(t, r.Header.Get("traceparent"), body.Data.Setting)
		}
	}
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestTraceExportErrorsAreLogged: serve's trace exporter, pointed at a port
// where nothing listens, says so in serve's JSON log, not as plain text
// beside it.
func TestTraceExportErrorsAreLogged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	bundle.createHook(t, newReceiver(t, nil).URL, "*")
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := listener.Addr().String()
	require.NoError(t, listener.Close())
	proc := startServe(t, bundle.pool.Config().ConnString(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+closed, "OTEL_BSP_SCHEDULE_DELAY=100")
	// An event published in a trace, whose fan-out is a span to export.
	require.NoError(t, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT set_config('hookrelay.traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', true),
			hookrelay.publish('User.Created', '{}')`)
		return err
	}))
	var text string
	require.Eventually(t, func() bool {
		out, _ := os.ReadFile(proc.logPath)
		text = string(out)
		return strings.Contains(text, `"msg":"exporting traces failed"`)
	}, time.Minute, 100*time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		require.True(t, json.Valid([]byte(line)), "a log line that is no JSON: %s", line)
	}
}
