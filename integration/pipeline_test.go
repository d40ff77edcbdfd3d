package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

type pipelineBundle struct {
	*storeBundle
	service *jobs.Service
}

// setupPipeline starts a service on a fresh database. Loopback is allowed so
// that the tests' receivers can be reached.
func setupPipeline(t testing.TB, config *jobs.Config) *pipelineBundle {
	t.Helper()
	return startPipeline(t, setupStore(t), config)
}

// startPipeline starts a service on bundle's database, as setupPipeline does.
func startPipeline(t testing.TB, bundle *storeBundle, config *jobs.Config) *pipelineBundle {
	t.Helper()
	if config == nil {
		config = &jobs.Config{}
	}
	config.Store = bundle.store
	if config.AllowCIDRs == nil {
		config.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if config.RetrySchedule == nil {
		config.RetrySchedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	}
	if config.Timeout == 0 {
		config.Timeout = 2 * time.Second
	}
	service, err := jobs.NewService(config)
	require.NoError(t, err)
	require.NoError(t, service.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, service.Stop(ctx))
	})
	// Before the service stops: what a failed test's pipeline held.
	t.Cleanup(func() {
		if t.Failed() {
			logPipelineState(t, bundle)
		}
	})
	return &pipelineBundle{storeBundle: bundle, service: service}
}

// logPipelineState logs, for a failed test's reader, where its events,
// deliveries and River jobs stand.
func logPipelineState(t testing.TB, bundle *storeBundle) {
	t.Helper()
	for _, q := range []struct{ what, query string }{
		{"events (unclaimed, all)", "SELECT count(*) FILTER (WHERE fanned_out_at IS NULL), count(*) FROM hookrelay.events"},
		{"deliveries (hook, status, count, soonest next attempt, most attempts)",
			"SELECT hook_id::text, status, count(*), min(next_attempt_at), max(attempts) FROM hookrelay.deliveries GROUP BY 1, 2 ORDER BY 1, 2"},
		{"River jobs (kind, state, count, soonest scheduled, last attempted, last finalized)", `SELECT kind, state, count(*),
			min(scheduled_at), max(attempted_at), max(finalized_at) FROM hookrelay.river_job GROUP BY 1, 2 ORDER BY 1, 2`},
		{"processes (client, gone since, lock held)", "SELECT client_id, gone_since, hookrelay.process_lock_held(lock_key, lock_pid) FROM hookrelay.processes"},
		{"now", "SELECT now()"},
	} {
		logRows(t, bundle.pool, q.what, q.query)
	}
}

// logRows logs each row query returns, as what, for a failure's reader.
func logRows(t testing.TB, pool *pgxpool.Pool, what, query string, args ...any) {
	t.Helper()
	rows, err := pool.Query(context.Background(), query, args...)
	if err != nil {
		t.Logf("%s: %v", what, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		values, _ := rows.Values()
		t.Logf("%s: %v", what, values)
	}
}

func (b *storeBundle) createHook(t testing.TB, url string, events ...string) *outbox.Hook {
	t.Helper()
	hook, err := b.store.CreateHook(context.Background(), &outbox.HookParams{URL: url, Events: events})
	require.NoError(t, err)
	return hook
}

// waitSettled waits until every event is fanned out and every River job is
// finalized: from then on nothing more can be sent, so a test may count what
// arrived instead of sleeping.
func (b *storeBundle) waitSettled(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var settled bool
		err := b.pool.QueryRow(context.Background(), `SELECT
			NOT EXISTS (SELECT 1 FROM hookrelay.events WHERE fanned_out_at IS NULL) AND
			NOT EXISTS (SELECT 1 FROM hookrelay.river_job WHERE finalized_at IS NULL AND kind <> 'hookrelay_retention')`).Scan(&settled)
		require.NoError(t, err)
		return settled
	}, 20*time.Second, 10*time.Millisecond)
}

func (b *storeBundle) waitDelivery(t *testing.T, hookID, status string, count int) []*outbox.Delivery {
	t.Helper()
	return b.waitDeliveryWithin(t, hookID, status, count, 20*time.Second)
}

// waitDeliveryWithin waits until the hook has count deliveries of status,
// failing the test after timeout.
func (b *storeBundle) waitDeliveryWithin(t *testing.T, hookID, status string, count int, timeout time.Duration) []*outbox.Delivery {
	t.Helper()
	var deliveries []*outbox.Delivery
	require.Eventually(t, func() bool {
		var err error
		deliveries, err = b.store.ListDeliveries(context.Background(), &outbox.DeliveryFilter{HookID: hookID, Status: status, Max: max(count, 1)})
		require.NoError(t, err)
		return len(deliveries) == count
	}, timeout, 20*time.Millisecond)
	return deliveries
}

func TestPipelineDeliversEveryEventToEveryMatchingHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)

	users := newReceiver(t, nil)
	everything := newReceiver(t, nil)
	signIns := newReceiver(t, nil)
	usersHook := bundle.createHook(t, users.URL, "User.*")
	everythingHook := bundle.createHook(t, everything.URL, "*")
	signInHook := bundle.createHook(t, signIns.URL, "PostSignIn", "User.Deleted")

	const n = 1000
	types := []string{"User.Created", "User.Data.Updated", "PostSignIn", "Role.Created"}
	want := map[string]map[string]bool{users.URL: {}, everything.URL: {}, signIns.URL: {}}
	for i := range n {
		eventType := types[i%len(types)]
		id, err := bundle.store.Publish(ctx, &outbox.Event{
			Type:    eventType,
			Data:    map[string]any{"n": i},
			Context: map[string]any{"userId": fmt.Sprintf("u%d", i), "hookId": "spoofed"},
		})
		require.NoError(t, err)
		want[everything.URL][id] = true
		if eventType == "User.Created" || eventType == "User.Data.Updated" {
			want[users.URL][id] = true
		}
		if eventType == "PostSignIn" {
			want[signIns.URL][id] = true
		}
	}

	for rec, hook := range map[*receiver]*outbox.Hook{users: usersHook, everything: everythingHook, signIns: signInHook} {
		expected := want[rec.URL]
		got := rec.waitFor(t, 60*time.Second, func(r []received) bool { return len(r) >= len(expected) })
		seen := map[string]bool{}
		for _, req := range got {
			var body map[string]any
			require.NoError(t, json.Unmarshal(req.Body, &body))
			eventID := body["eventId"].(string)
			require.True(t, expected[eventID], "unexpected event %s (%s) at %s", eventID, body["event"], rec.URL)
			require.False(t, seen[eventID], "event %s delivered twice", eventID)
			seen[eventID] = true
			require.Equal(t, hook.ID, body["hookId"], "context may not override hookId")
			require.Equal(t, 1, verifyStandardSignature(t, hook.SigningKey, req))
			require.True(t, verifyLogtoSignature(hook.SigningKey, req))
			require.Equal(t, "application/json", req.Header.Get("Content-Type"))
			require.Equal(t, "hookrelay/"+outbox.Version, req.Header.Get("User-Agent"))
		}
		require.Len(t, seen, len(expected))
	}

	bundle.waitSettled(t) // a batch's outcomes are recorded after its last request
	var deliveries int
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status = 'succeeded'").Scan(&deliveries))
	require.Equal(t, len(want[users.URL])+len(want[everything.URL])+len(want[signIns.URL]), deliveries)
}
