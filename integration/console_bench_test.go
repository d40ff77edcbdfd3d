package integration

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkConsolePages times the console's pages over 100,000 deliveries of
// one hook (2 % of them failed), each request through the HTTP server:
//
//	go test -run '^$' -bench ConsolePages ./integration
func BenchmarkConsolePages(b *testing.B) {
	ctx := context.Background()
	api := setupAPI(b)
	hook := api.createHook(b, "http://127.0.0.1:9/never-called", "*")
	// Finished deliveries written directly (no job sends them), in fan-out
	// batches of 1,000 events sharing their transaction's time, as fan-out
	// writes them.
	_, err := api.pool.Exec(ctx, `
		INSERT INTO hookrelay.events (type, data, fanned_out_at)
		SELECT 'User.Created', jsonb_build_object('id', 'u' || i), now() FROM generate_series(1, 100000) i`)
	require.NoError(b, err)
	_, err = api.pool.Exec(ctx, `
		INSERT INTO hookrelay.deliveries (event_id, hook_id, status, attempts, last_status_code, last_duration_ms, last_attempt_at, finished_at, created_at)
		SELECT id, $1, CASE WHEN random() < 0.02 THEN 'failed' ELSE 'succeeded' END, 1, 200, 12, now(), now(),
		       now() - (100 - (row_number() OVER (ORDER BY id) - 1) / 1000) * interval '1 second'
		FROM hookrelay.events ORDER BY id`, hook.ID)
	require.NoError(b, err)
	_, err = api.pool.Exec(ctx, "ANALYZE hookrelay.events; ANALYZE hookrelay.deliveries")
	require.NoError(b, err)
	var deep, delivery, event string
	require.NoError(b, api.pool.QueryRow(ctx, "SELECT id FROM hookrelay.deliveries ORDER BY id DESC OFFSET 50000 LIMIT 1").Scan(&deep))
	require.NoError(b, api.pool.QueryRow(ctx, "SELECT id, event_id FROM hookrelay.deliveries ORDER BY id DESC LIMIT 1").Scan(&delivery, &event))

	for _, page := range []struct{ name, path string }{
		{"hooks", "/console/"},
		{"hook", "/console/hooks/" + hook.ID},
		{"hook-failed", "/console/hooks/" + hook.ID + "?status=failed"},
		{"hook-page-1000", "/console/hooks/" + hook.ID + "?after=" + deep},
		{"delivery", "/console/deliveries/" + delivery},
		{"events", "/console/events"},
		{"event", "/console/events/" + event},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				req, err := http.NewRequest(http.MethodGet, api.url+page.path, nil)
				require.NoError(b, err)
				req.SetBasicAuth("admin", adminToken)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(b, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				require.Equal(b, http.StatusOK, resp.StatusCode)
			}
		})
	}
}
