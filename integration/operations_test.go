package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// metricValue scrapes /metrics and returns the value of the sample named
// exactly name (with its labels), or -1 when absent.
func metricValue(t *testing.T, baseURL, name string) float64 {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupAPI(t)
	ok := newReceiver(t, nil)
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	bundle.createHook(t, ok.URL, "*")
	failingHook := bundle.createHook(t, failing.URL, "*")

	require.Equal(t, 0.0, metricValue(t, bundle.url, `hookrelay_delivery_attempts_total{result="success"}`))
	// River jobs not yet final: none but retention's, which runs at start
	// (gauges are read at most every 10 s).
	// The hooks' Hook.Created events are fanned out too.
	require.Eventually(t, func() bool {
		return metricValue(t, bundle.url, "hookrelay_deliveries_pending") == 0 &&
			metricValue(t, bundle.url, "hookrelay_outbox_lag_seconds") == 0
	}, 30*time.Second, 50*time.Millisecond)

	for range 5 {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
	}
	bundle.waitDelivery(t, failingHook.ID, outbox.DeliveryFailed, 5) // the schedule is three fast retries

	require.Equal(t, 5.0, metricValue(t, bundle.url, `hookrelay_delivery_attempts_total{result="success"}`))
	require.Equal(t, 20.0, metricValue(t, bundle.url, `hookrelay_delivery_attempts_total{result="http_error"}`))
	require.Equal(t, 5.0, metricValue(t, bundle.url, `hookrelay_deliveries_finished_total{status="succeeded"}`))
	require.Equal(t, 5.0, metricValue(t, bundle.url, `hookrelay_deliveries_finished_total{status="failed"}`))
	// The hooks' Hook.Created, and a Delivery.Failed per failed delivery,
	// published as it failed and fanned out a moment later.
	require.Eventually(t, func() bool { return metricValue(t, bundle.url, "hookrelay_events_fanned_out_total") == 5.0+2+5 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 25.0, metricValue(t, bundle.url, "hookrelay_delivery_attempt_duration_seconds_count"))
	require.Eventually(t, func() bool { // gauges are read at most every 10 s
		return metricValue(t, bundle.url, "hookrelay_deliveries_pending") == 0
	}, 30*time.Second, 50*time.Millisecond)
	require.GreaterOrEqual(t, metricValue(t, bundle.url, `hookrelay_river_queue_jobs{queue="hookrelay_deliver",state="available"}`), 0.0)

	// An event nobody fans out shows as lag: stop the service first.
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, bundle.service.Stop(stopCtx))
	_, err := bundle.pool.Exec(ctx, "INSERT INTO hookrelay.events (type, created_at) VALUES ('User.Created', now() - interval '90 seconds')")
	require.NoError(t, err)
	// A scrape right after the last one is served from memory, so that a
	// tight scraping loop costs the database nothing.
	require.Zero(t, metricValue(t, bundle.url, "hookrelay_outbox_lag_seconds"))
	require.Eventually(t, func() bool {
		lag := metricValue(t, bundle.url, "hookrelay_outbox_lag_seconds")
		return lag >= 80 && lag <= 120
	}, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, bundle.service.Start(ctx))
}

func TestRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	ok := newReceiver(t, nil)
	okHook := bundle.createHook(t, ok.URL, "User.*")
	newFinished, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Deleted"})
	require.NoError(t, err)
	bundle.waitDelivery(t, okHook.ID, outbox.DeliverySucceeded, 1)

	// Events of eight days ago: ids are UUIDv7, which start with their time.
	old := func(status string) string {
		eventID := uuidV7At(t, time.Now().Add(-8*24*time.Hour))
		_, err := bundle.pool.Exec(ctx, `WITH e AS (
				INSERT INTO hookrelay.events (id, type, created_at, fanned_out_at) VALUES ($1, 'User.Created', now() - interval '8 days', now() - interval '8 days') RETURNING id
			), d AS (
				INSERT INTO hookrelay.deliveries (event_id, hook_id, status, attempts) SELECT id, $2, $3, 1 FROM e RETURNING id
			)
			INSERT INTO hookrelay.delivery_attempts (delivery_id, attempt, status_code, duration_ms) SELECT id, 1, 500, 3 FROM d`,
			eventID, okHook.ID, status)
		require.NoError(t, err)
		return eventID
	}
	oldFinished, oldPending := old(outbox.DeliveryFailed), old(outbox.DeliveryPending)
	// River jobs finished eight days ago, hookrelay's and an application's
	// on the same River tables: River's own cleaner would keep none past a
	// day, but it cannot tell them apart on a shared client.
	riverJob := func(kind, queue, state string) int64 {
		var id int64
		require.NoError(t, bundle.pool.QueryRow(ctx, fmt.Sprintf(`INSERT INTO %s.river_job (args, kind, queue, state, attempt, max_attempts, attempted_at, finalized_at)
			VALUES ('{}', $1, $2, $3, 1, 5, now() - interval '8 days', now() - interval '8 days') RETURNING id`, bundle.store.RiverSchema()),
			kind, queue, state).Scan(&id))
		return id
	}
	oldJobs := []int64{
		riverJob("hookrelay_deliver", jobs.QueueDeliver, "completed"),
		riverJob("hookrelay_deliver", jobs.QueueDeliver, "cancelled"),
		riverJob("hookrelay_fanout", jobs.QueueControl, "discarded"),
	}
	appJob := riverJob("send_invoice", "default", "completed")

	_, err = bundle.service.Client().Insert(ctx, jobs.RetentionArgs{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := bundle.store.GetEvent(ctx, oldFinished)
		return err != nil
	}, 20*time.Second, 20*time.Millisecond)
	_, err = bundle.store.GetEvent(ctx, oldFinished)
	require.ErrorIs(t, err, outbox.ErrEventNotFound)

	for _, kept := range []string{oldPending, newFinished} {
		_, err := bundle.store.GetEvent(ctx, kept)
		require.NoError(t, err, "retention keeps new and unfinished events")
	}
	var deliveries, attempts int
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries").Scan(&deliveries))
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.delivery_attempts").Scan(&attempts))
	require.Equal(t, 2, deliveries, "the old finished event's delivery went with it")
	require.Equal(t, 1, attempts, "the old finished delivery's attempt went with it")

	require.Eventually(t, func() bool { // events first, then River's jobs
		for _, id := range oldJobs {
			if _, err := bundle.service.Client().JobGet(ctx, id); !errors.Is(err, river.ErrNotFound) {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "retention deletes hookrelay's jobs finished before it")
	_, err = bundle.service.Client().JobGet(ctx, appJob)
	require.NoError(t, err, "retention leaves an application's jobs to River")
	var recent int
	require.NoError(t, bundle.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s.river_job WHERE kind = 'hookrelay_deliver'", bundle.store.RiverSchema())).Scan(&recent))
	require.Equal(t, 1, recent, "the job that delivered the new event is kept")
	families, err := bundle.service.Registry().Gather()
	require.NoError(t, err)
	deleted := 0.0
	for _, family := range families {
		if family.GetName() == "hookrelay_retention_jobs_deleted_total" {
			deleted = family.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Equal(t, 3.0, deleted)
}

// uuidV7At returns a UUIDv7 of time at.
func uuidV7At(t *testing.T, at time.Time) string {
	t.Helper()
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func TestAutoDisable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var offset atomic.Int64 // the fake clock's lead over the real one
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	// The first wait leaves time to move the clock between two attempts:
	// the clock moving during one would make it last days.
	schedule := []time.Duration{3 * time.Second, 20 * time.Millisecond, 20 * time.Millisecond, time.Hour}
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: schedule, DisableAfter: 5 * 24 * time.Hour, Now: now})

	var failures atomic.Int64
	failures.Store(1)
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if int64(n) <= failures.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hook := bundle.createHook(t, rec.URL, "*")

	t.Run("SuccessResetsTheRun", func(t *testing.T) {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)
		got, err := bundle.store.GetHook(ctx, hook.ID)
		require.NoError(t, err)
		require.Nil(t, got.FailingSince)
		require.True(t, got.Enabled)
	})

	t.Run("FailingForTheWindowDisables", func(t *testing.T) {
		failures.Store(1 << 30)
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		var got *outbox.Hook
		require.Eventually(t, func() bool {
			got, err = bundle.store.GetHook(ctx, hook.ID)
			return err == nil && got.FailingSince != nil
		}, time.Minute, 10*time.Millisecond, "the first attempt failed")
		require.True(t, got.Enabled, "a short run of failures is tolerated")

		// Before the second attempt, 3 s after the first, the clock moves
		// past the window.
		offset.Store(int64(5*24*time.Hour + time.Minute))
		require.Eventually(t, func() bool {
			got, err = bundle.store.GetHook(ctx, hook.ID)
			return err == nil && !got.Enabled
		}, time.Minute, 20*time.Millisecond)
		require.Contains(t, got.DisabledReason, "every attempt failed since")

		enabled, err := bundle.store.EnableHook(ctx, hook.ID)
		require.NoError(t, err)
		require.Nil(t, enabled.FailingSince, "re-enabling resets the run")
		require.Empty(t, enabled.DisabledReason)
	})
}
