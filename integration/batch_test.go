package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// deliverJobs returns the hookrelay_deliver jobs' delivery counts, attempts
// and errors.
func (b *storeBundle) deliverJobs(t *testing.T) []deliverJob {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT cardinality(string_to_array(args->>'deliveries', ' ')), attempt, state::text, errors::text[],
		coalesce(metadata->'output', 'null')
		FROM hookrelay.river_job WHERE kind = 'hookrelay_deliver' ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var jobs []deliverJob
	for rows.Next() {
		var j deliverJob
		require.NoError(t, rows.Scan(&j.deliveries, &j.attempt, &j.state, &j.errors, &j.report))
		jobs = append(jobs, j)
	}
	require.NoError(t, rows.Err())
	return jobs
}

type deliverJob struct {
	deliveries, attempt int
	state               string
	errors              []string
	report              *jobs.RunReport // its last run's, when it had to wait
}

func TestDeliverJobCarriesAHooksBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	bundle.createHook(t, a.URL, "*")
	bundle.createHook(t, b.URL, "User.*")

	// Published before any worker runs, so that one fan-out claims them all.
	const events = 250
	for range events {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
	}
	startPipeline(t, bundle, nil)
	bundle.waitSettled(t)

	require.Len(t, a.all(), events)
	require.Len(t, b.all(), events)
	counts, err := bundle.store.CountDeliveries(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2*events), counts.Succeeded)

	// One job per hook per 100 deliveries: 2 × (100 + 100 + 50).
	jobs := bundle.deliverJobs(t)
	require.Len(t, jobs, 6)
	total := 0
	for _, j := range jobs {
		require.Equal(t, "completed", j.state)
		require.Equal(t, 1, j.attempt)
		total += j.deliveries
	}
	require.Equal(t, 2*events, total)
}

func TestDeliverJobRetriesOnlyItsFailedDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)

	// The first request of every odd event fails.
	var mu sync.Mutex
	seen := map[float64]int{}
	var rec *receiver
	rec = newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		var body struct {
			Data struct{ N float64 } `json:"data"`
		}
		_ = json.Unmarshal(rec.all()[n-1].Body, &body)
		mu.Lock()
		seen[body.Data.N]++
		first := seen[body.Data.N] == 1
		mu.Unlock()
		if first && int(body.Data.N)%2 == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hook := bundle.createHook(t, rec.URL, "*")
	const events = 20
	for i := range events {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created", Data: map[string]any{"n": i}})
		require.NoError(t, err)
	}
	startPipeline(t, bundle, nil)
	bundle.waitSettled(t)

	require.Len(t, rec.all(), events+events/2, "each odd event twice, each even one once")
	for n, count := range seen {
		require.Equal(t, 1+int(n)%2, count, "event %v", n)
	}
	deliveries, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
	require.NoError(t, err)
	require.Len(t, deliveries, events)
	for _, d := range deliveries {
		require.Equal(t, outbox.DeliverySucceeded, d.Status)
	}

	// The failed deliveries waited in the job, which used no River attempt
	// for them, and its report says what its last run did.
	deliver := bundle.deliverJobs(t)
	require.Len(t, deliver, 1)
	require.Equal(t, "completed", deliver[0].state)
	require.Equal(t, 1, deliver[0].attempt)
	require.Empty(t, deliver[0].errors)
	require.Equal(t, &jobs.RunReport{Sent: events / 2, Succeeded: events / 2}, deliver[0].report)
}

// TestDeliverJobReportsWhyItWaits: a job whose deliveries wait for their next
// attempt says so in its output, which River's UI shows.
func TestDeliverJobReportsWhyItWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n%2 == 1 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: []time.Duration{time.Hour}})
	bundle.createHook(t, rec.URL, "*")
	for range 4 {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
	}
	var deliver []deliverJob
	require.Eventually(t, func() bool {
		deliver = bundle.deliverJobs(t)
		waiting := 0
		for _, j := range deliver {
			if j.state == "scheduled" && j.report != nil {
				waiting += j.report.Retrying
			}
		}
		return waiting == 2
	}, 20*time.Second, 20*time.Millisecond)
	for _, j := range deliver {
		if j.report == nil {
			continue
		}
		require.LessOrEqual(t, j.attempt, 1, "a delivery's failure uses no River attempt")
		require.Contains(t, j.report.LastFailure, "attempt 1: receiver answered 502")
		require.WithinDuration(t, time.Now().Add(time.Hour), j.report.NextAttemptAt, 15*time.Minute)
	}
}

// TestRecordAttemptsGuards holds the recording of outcomes to the state it
// expects: a stale outcome changes nothing, and a delivery that vanished
// never fails its batch-mates.
func TestRecordAttemptsGuards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	keep := bundle.createHook(t, "http://127.0.0.1:1/keep", "*")
	gone := bundle.createHook(t, "http://127.0.0.1:1/gone", "*")
	keepID, err := bundle.store.CreateTestDelivery(ctx, keep.ID, "User.Created")
	require.NoError(t, err)
	goneID, err := bundle.store.CreateTestDelivery(ctx, gone.ID, "User.Created")
	require.NoError(t, err)
	sends, err := bundle.store.LoadSends(ctx, []string{keepID, goneID})
	require.NoError(t, err)
	require.Len(t, sends, 2)
	record := func(send *outbox.Send, attempt, code int, status string) *outbox.AttemptRecord {
		return &outbox.AttemptRecord{Send: send, Status: status, Result: &outbox.AttemptResult{
			Attempt: attempt, At: time.Now(), StatusCode: code, Duration: time.Millisecond,
		}}
	}
	byID := map[string]*outbox.Send{sends[0].DeliveryID: sends[0], sends[1].DeliveryID: sends[1]}

	// A hook deleted while its request was in flight: its batch-mate is
	// recorded all the same.
	require.NoError(t, bundle.store.DeleteHook(ctx, gone.ID))
	statuses, err := bundle.store.RecordAttempts(ctx, []*outbox.AttemptRecord{
		record(byID[goneID], 1, 500, outbox.DeliveryPending),
		record(byID[keepID], 1, 500, outbox.DeliveryPending),
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{keepID: outbox.DeliveryPending}, statuses)

	// The same attempt recorded again (a caller that gave up, flushed late)
	// changes nothing.
	statuses, err = bundle.store.RecordAttempts(ctx, []*outbox.AttemptRecord{record(byID[keepID], 1, 503, outbox.DeliveryPending)})
	require.NoError(t, err)
	require.Empty(t, statuses)

	statuses, err = bundle.store.RecordAttempts(ctx, []*outbox.AttemptRecord{record(byID[keepID], 2, 200, outbox.DeliverySucceeded)})
	require.NoError(t, err)
	require.Equal(t, map[string]string{keepID: outbox.DeliverySucceeded}, statuses)

	// A stale failure arriving after the success does not reopen it.
	statuses, err = bundle.store.RecordAttempts(ctx, []*outbox.AttemptRecord{record(byID[keepID], 2, 500, outbox.DeliveryPending)})
	require.NoError(t, err)
	require.Empty(t, statuses)

	delivery, err := bundle.store.GetDelivery(ctx, keepID)
	require.NoError(t, err)
	require.Equal(t, outbox.DeliverySucceeded, delivery.Status)
	require.Equal(t, 2, delivery.AttemptCount)
	require.NotNil(t, delivery.FinishedAt)
	require.Len(t, delivery.Attempts, 2)
	require.Equal(t, 500, *delivery.Attempts[0].StatusCode)
	require.Equal(t, 200, *delivery.Attempts[1].StatusCode)
}

// TestHangingHookDoesNotDelayOthers holds invariant 8 with the default
// timeout: while one receiver holds every request it gets, each event still
// reaches another at once. Events are published one at a time, so that the
// hanging hook gets a job per event, more than a process has workers.
func TestHangingHookDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	release := make(chan struct{})
	hanging := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	healthy := newReceiver(t, nil)
	bundle := setupPipeline(t, &jobs.Config{Timeout: jobs.TimeoutDefault})
	t.Cleanup(func() { close(release) }) // before the receivers close and the service stops
	bundle.createHook(t, hanging.URL, "*")
	bundle.createHook(t, healthy.URL, "*")

	// Every request to the hanging hook is held until its timeout: an event
	// that waited for one of them would take a timeout to arrive.
	events := jobs.MaxWorkersDefault + 50
	var slowest time.Duration
	for i := range events {
		published := time.Now()
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		healthy.waitFor(t, 2*jobs.TimeoutDefault, func(r []received) bool { return len(r) == i+1 })
		slowest = max(slowest, time.Since(published))
	}
	require.NotEmpty(t, hanging.all())
	require.Less(t, slowest, jobs.TimeoutDefault, "no event reached the healthy hook only after the hanging one's timeout")
}

// TestFanOutIsBoundedByDeliveries: with many hooks, one fan-out transaction
// claims fewer events, so that no transaction creates more than
// FanOutDeliveriesMax deliveries, however many hooks there are.
func TestFanOutIsBoundedByDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	rec := newReceiver(t, nil)
	const hooks, events = 150, 100
	for range hooks {
		bundle.createHook(t, rec.URL, "*")
	}
	for range events {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
	}
	startPipeline(t, bundle, nil)
	perID := func(r []received) map[string]int {
		ids := map[string]int{}
		for _, req := range r {
			ids[req.Header.Get("webhook-id")]++
		}
		return ids
	}
	rec.waitFor(t, 2*time.Minute, func(r []received) bool { return len(perID(r)) >= hooks*events })
	bundle.waitSettled(t)
	// Every delivery arrived. At least once: one arrived twice only where an
	// attempt was recorded for each arrival (under -race on a loaded machine,
	// an answer can come after the timeout), never otherwise.
	arrivals := perID(rec.all())
	require.Len(t, arrivals, hooks*events)
	for id, n := range arrivals {
		if n > 1 {
			var attempts int
			require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT attempts FROM hookrelay.deliveries WHERE id = $1", id).Scan(&attempts))
			require.GreaterOrEqual(t, attempts, n, "delivery %s arrived %d times with %d attempts recorded", id, n, attempts)
		}
	}

	// A transaction's deliveries share its start time.
	rows, err := bundle.pool.Query(ctx, "SELECT count(*) FROM hookrelay.deliveries GROUP BY created_at")
	require.NoError(t, err)
	var perTx []int
	for rows.Next() {
		var n int
		require.NoError(t, rows.Scan(&n))
		perTx = append(perTx, n)
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, len(perTx), 2)
	for _, n := range perTx {
		require.LessOrEqual(t, n, outbox.FanOutDeliveriesMax)
	}
}

// TestDeliveryWithoutJobIsGivenOneAgain: a pending delivery whose River job
// was deleted (River's UI has the button) is found by the reconciler, and a
// replay of it is accepted, instead of staying pending forever.
func TestDeliveryWithoutJobIsGivenOneAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: []time.Duration{time.Hour}})
	// The first request of each delivery fails; its retry is an hour away.
	var mu sync.Mutex
	seen := map[string]int{}
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Header.Get("webhook-id")]++
		if seen[r.Header.Get("webhook-id")] == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	hook := bundle.createHook(t, rec.URL, "*")

	strand := func() string {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		var jobID int64
		var deliveryID string
		require.Eventually(t, func() bool {
			err := bundle.pool.QueryRow(ctx, `SELECT j.id, d.id FROM hookrelay.river_job j
				JOIN hookrelay.deliveries d ON d.id::text = j.args->>'deliveries'
				WHERE j.state = 'scheduled' AND d.attempts = 1`).Scan(&jobID, &deliveryID)
			return err == nil
		}, 20*time.Second, 20*time.Millisecond)
		_, err = bundle.service.Client().JobDelete(ctx, jobID)
		require.NoError(t, err)
		return deliveryID
	}
	succeeded := func(id string) bool {
		d, err := bundle.store.GetDelivery(ctx, id)
		require.NoError(t, err)
		return d.Status == outbox.DeliverySucceeded
	}

	replayed := strand()
	require.NoError(t, bundle.service.ReplayDelivery(ctx, replayed))
	require.Eventually(t, func() bool { return succeeded(replayed) }, 20*time.Second, 20*time.Millisecond)

	// A pending delivery that a job still carries is not replayed beside it.
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	var carried string
	require.Eventually(t, func() bool {
		return bundle.pool.QueryRow(ctx, `SELECT d.id FROM hookrelay.deliveries d WHERE d.attempts = 1 AND d.status = 'pending'`).Scan(&carried) == nil
	}, 20*time.Second, 20*time.Millisecond)
	require.ErrorIs(t, bundle.service.ReplayDelivery(ctx, carried), jobs.ErrDeliveryPending)
	_, err = bundle.pool.Exec(ctx, "DELETE FROM hookrelay.deliveries WHERE id = $1", carried)
	require.NoError(t, err)

	// The reconciler gives an orphan a job again, which waits for the
	// delivery's own next attempt.
	orphan := strand()
	// Older than the reconciler's grace minute, as it will be.
	_, err = bundle.pool.Exec(ctx, "UPDATE hookrelay.deliveries SET updated_at = now() - interval '2 minutes' WHERE id = $1", orphan)
	require.NoError(t, err)
	_, err = bundle.service.Client().Insert(ctx, jobs.ReconcileArgs{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var waits bool
		err := bundle.pool.QueryRow(ctx, `SELECT j.scheduled_at BETWEEN d.next_attempt_at - interval '1 second' AND d.next_attempt_at + interval '1 second'
			FROM hookrelay.river_job j JOIN hookrelay.deliveries d ON d.id::text = j.args->>'deliveries'
			WHERE d.id = $1 AND j.state = 'scheduled'`, orphan).Scan(&waits)
		return err == nil && waits
	}, 20*time.Second, 20*time.Millisecond)
	deliveries, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID, Status: outbox.DeliverySucceeded})
	require.NoError(t, err)
	require.Len(t, deliveries, 1)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, seen[replayed], "the replayed delivery: a failure, then one success")
	require.Equal(t, 1, seen[orphan], "the orphan waits for its next attempt")
}
