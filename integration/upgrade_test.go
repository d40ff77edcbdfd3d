package integration

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// TestJobOfThePreviousRelease: a deliver job as the release before delivery
// counts (c3facd4) left it at an upgrade, its River attempt counting its
// batch's attempts (7 of 9), works on the delivery's own count (2 made): the
// third attempt waits the schedule's third step, not the eighth, and does
// not end the delivery, with every setting at its default.
func TestJobOfThePreviousRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: jobs.TimeoutDefault})
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	hook := bundle.createHook(t, rec.URL, "User.*")
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	rec.waitFor(t, 30*time.Second, func(r []received) bool { return len(r) == 1 })
	require.Eventually(t, func() bool {
		jobs := bundle.deliverJobs(t)
		return len(jobs) == 1 && jobs[0].state != "running"
	}, 10*time.Second, 20*time.Millisecond, "the job waits for the delivery's next attempt")

	// The state c3facd4 left: a second attempt recorded, the job at its
	// seventh River attempt of nine.
	_, err = bundle.pool.Exec(ctx, `WITH d AS (UPDATE hookrelay.deliveries SET attempts = 2 WHERE hook_id = $1 RETURNING id)
		INSERT INTO hookrelay.delivery_attempts (delivery_id, attempt, status_code, duration_ms) SELECT id, 2, 500, 3 FROM d`, hook.ID)
	require.NoError(t, err)
	var jobID int64
	require.NoError(t, bundle.pool.QueryRow(ctx, `UPDATE hookrelay.river_job SET attempt = 7, max_attempts = 9, metadata = '{}'
		WHERE kind = 'hookrelay_deliver' RETURNING id`).Scan(&jobID))
	_, err = bundle.service.Client().JobRetry(ctx, jobID)
	require.NoError(t, err)

	rec.waitFor(t, 30*time.Second, func(r []received) bool { return len(r) == 2 })
	deliveries := bundle.waitDelivery(t, hook.ID, outbox.DeliveryPending, 1)
	require.Eventually(t, func() bool {
		d, err := bundle.store.GetDelivery(ctx, deliveries[0].ID)
		require.NoError(t, err)
		deliveries[0] = d
		return d.AttemptCount == 3
	}, 10*time.Second, 20*time.Millisecond)
	d := deliveries[0]
	require.Equal(t, outbox.DeliveryPending, d.Status, "three attempts of eight made: the delivery goes on")
	require.NotNil(t, d.NextAttemptAt)
	wait := d.NextAttemptAt.Sub(*d.LastAttemptAt)
	step := jobs.RetryScheduleDefault[2]
	require.InDelta(t, step.Seconds(), wait.Seconds(), 0.21*step.Seconds(), "the third attempt waits the third step, ±20 %%: %s", wait)
}
