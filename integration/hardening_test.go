package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// TestNoSecretInLogs runs serve, drives deliveries that succeed, fail and
// get a hook disabled, rotates a key, then searches every log line, the
// deliveries' errors and River's job args for any signing key, the admin
// token and a secret in a hook's URL.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	proc := startServe(t, bundle.pool.Config().ConnString())

	ok := newReceiver(t, nil)
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n%2 == 0 {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("receiver error"))
	})
	hookA := bundle.createHook(t, ok.URL, "*")
	hookB := bundle.createHook(t, failing.URL+"/path?token=query-secret", "*")
	rotated, err := bundle.store.RotateHookKey(ctx, hookA.ID, time.Hour)
	require.NoError(t, err)
	for range 20 {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u"}})
		require.NoError(t, err)
	}
	bundle.waitDelivery(t, hookA.ID, outbox.DeliverySucceeded, 20)
	require.Eventually(t, func() bool {
		hook, err := bundle.store.GetHook(ctx, hookB.ID)
		return err == nil && !hook.Enabled
	}, 30*time.Second, 50*time.Millisecond)

	proc.kill()
	logText, err := os.ReadFile(proc.logPath)
	require.NoError(t, err)
	require.Contains(t, string(logText), "hook disabled", "the log is the service's")
	for _, secret := range []string{hookA.SigningKey, rotated.SigningKey, hookB.SigningKey, adminToken, "query-secret"} {
		require.NotContains(t, string(logText), secret)
		// Nor in what the API and CLI show as errors of deliveries.
		deliveries, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hookB.ID})
		require.NoError(t, err)
		encoded, _ := json.Marshal(deliveries)
		require.NotContains(t, string(encoded), secret)
	}
	// Nor in River's job args.
	var args []string
	rows, err := bundle.pool.Query(ctx, "SELECT args::text FROM hookrelay.river_job")
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		args = append(args, a)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, args)
	all := strings.Join(args, "\n")
	require.NotContains(t, all, "whsec_")
}

// TestHugeAndEndlessAnswers: a receiver that answers with a huge body or
// streams forever cannot hold a worker or its memory.
func TestHugeAndEndlessAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	huge := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 1600 { // 100 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	endless := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("y", 1024))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	hugeHook := bundle.createHook(t, huge.URL, "*")
	endlessHook := bundle.createHook(t, endless.URL, "*")
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)

	for _, hookID := range []string{hugeHook.ID, endlessHook.ID} {
		deliveries := bundle.waitDelivery(t, hookID, outbox.DeliverySucceeded, 1)
		delivery, err := bundle.store.GetDelivery(ctx, deliveries[0].ID)
		require.NoError(t, err)
		last := delivery.Attempts[len(delivery.Attempts)-1]
		require.Len(t, last.ResponseBody, outbox.ResponseBodyMaxBytes)
		require.Less(t, last.DurationMS, 2000, "the answer was not read to its end")
	}
}
