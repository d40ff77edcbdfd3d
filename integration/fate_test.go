package integration

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// The tests of invariant 9, a delivery's fate is its own, run with the
// default retry schedule and a one-second request timeout (the default ten
// would make each take minutes), unless a receiver must stay down for the
// whole schedule.

// oneIn reports whether id falls in the share 1/n of ids, the same way on
// every call.
func oneIn(id string, n uint32) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return h.Sum32()%n == 0
}

// perDelivery groups requests by webhook-id, in order of arrival.
func perDelivery(requests []received) map[string][]received {
	by := map[string][]received{}
	for _, r := range requests {
		id := r.Header.Get("webhook-id")
		by[id] = append(by[id], r)
	}
	return by
}

// firstTimes records, per webhook-id, whether its first request came.
type firstTimes struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *firstTimes) first(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	first := !f.seen[id]
	f.seen[id] = true
	return first
}

// TestNeighboursTimeoutDelaysNoOne: 1,000 events at 200/s to a receiver that
// answers at once, except the first attempts of 5 % of the deliveries, which
// it holds past the timeout. Each other delivery arrives as soon as its own
// request is answered; each held one after its own first retry.
func TestNeighboursTimeoutDelaysNoOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var firsts firstTimes
	held := func(id string) bool { return oneIn(id, 20) }
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		id := r.Header.Get("webhook-id")
		if firsts.first(id) && held(id) {
			<-r.Context().Done() // past the timeout
		}
	})
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: time.Second})
	bundle.createHook(t, rec.URL, "*")

	const events = 1000
	published := make(map[string]time.Time, events) // event ID → when it committed
	ticker := time.NewTicker(time.Second / 200)
	defer ticker.Stop()
	for range events {
		<-ticker.C
		id, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		published[id] = time.Now()
	}
	arrived := func(requests []received) bool {
		by := perDelivery(requests)
		if len(by) < events {
			return false
		}
		for id, reqs := range by {
			if held(id) && len(reqs) < 2 {
				return false
			}
		}
		return true
	}
	by := perDelivery(rec.waitFor(t, time.Minute, arrived))
	bundle.waitSettled(t)
	by = perDelivery(rec.all())

	var prompt, late []time.Duration
	for id, reqs := range by {
		require.LessOrEqual(t, len(reqs), 2, "delivery %s: at most its first attempt and one retry", id)
		var event struct {
			EventID string `json:"eventId"`
		}
		require.NoError(t, json.Unmarshal(reqs[0].Body, &event))
		took := reqs[len(reqs)-1].At.Sub(published[event.EventID])
		if held(id) {
			require.Len(t, reqs, 2)
			late = append(late, took)
		} else {
			require.Len(t, reqs, 1)
			prompt = append(prompt, took)
		}
	}
	slices.Sort(prompt)
	slices.Sort(late)
	t.Logf("%d answered at once: p50 %s, p99 %s, max %s; %d held past the timeout once: max %s",
		len(prompt), prompt[len(prompt)/2], prompt[len(prompt)*99/100], prompt[len(prompt)-1], len(late), late[len(late)-1])
	require.GreaterOrEqual(t, len(prompt), events*90/100)
	require.Less(t, prompt[len(prompt)*99/100], 2*time.Second, "a delivery answered at once is never held back by a neighbour's timeout")
	require.Less(t, late[len(late)-1], 15*time.Second, "a held delivery goes again after its own first retry")
	counts, err := bundle.store.CountDeliveries(ctx)
	require.NoError(t, err)
	require.Equal(t, &outbox.DeliveryCounts{Succeeded: events}, counts)
}

// TestEveryFirstAttemptFailing: with 100-delivery batches, every delivery's
// first attempt is reset or held past the timeout: each arrives on its
// second, none fails, and none is sent a third time.
func TestEveryFirstAttemptFailing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		fail func(w http.ResponseWriter, r *http.Request)
	}{
		{"Reset", func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0) // RST, not FIN
				_ = conn.Close()
			}
		}},
		{"Timeout", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var firsts firstTimes
			rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if firsts.first(r.Header.Get("webhook-id")) {
					tt.fail(w, r)
				}
			})
			bundle := setupStore(t)
			hook := bundle.createHook(t, rec.URL, "*")
			const events = 300
			for range events {
				_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
				require.NoError(t, err)
			}
			// Started after publishing, so that fan-out makes full batches.
			startPipeline(t, bundle, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: time.Second})
			bundle.waitDeliveryWithin(t, hook.ID, outbox.DeliverySucceeded, events, time.Minute)
			bundle.waitSettled(t)

			require.Len(t, perDelivery(rec.all()), events)
			for id, reqs := range perDelivery(rec.all()) {
				require.Len(t, reqs, 2, "delivery %s: its first attempt failed, its second arrived", id)
			}
			counts, err := bundle.store.CountDeliveries(ctx)
			require.NoError(t, err)
			require.Equal(t, &outbox.DeliveryCounts{Succeeded: events}, counts)
			for _, j := range bundle.deliverJobs(t) {
				require.Equal(t, deliverBatchSize(j.deliveries), j.deliveries)
			}
		})
	}
}

// deliverBatchSize is what a deliver job of a full fan-out carries.
func deliverBatchSize(n int) int { return min(n, 100) }

// TestDeadReceiverGetsTheWholeSchedule: a receiver down for the whole
// schedule, refusing connections or holding every request, gets exactly the
// schedule's attempts of each delivery, which then fails; a hanging one holds
// its hook's slots, not the workers.
func TestDeadReceiverGetsTheWholeSchedule(t *testing.T) {
	t.Parallel()
	// A schedule of seconds, so that the test lasts seconds.
	schedule := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, time.Second}
	const events = 60
	for _, tt := range []struct {
		name    string
		hanging bool
	}{{"Refusing", false}, {"Hanging", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var held inFlightPeak
			url := closedPort(t)
			var rec *receiver
			if tt.hanging {
				rec = newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
					held.enter()
					defer held.leave()
					<-r.Context().Done()
				})
				url = rec.URL
			}
			bundle := setupPipeline(t, &jobs.Config{RetrySchedule: schedule, Timeout: time.Second})
			hook := bundle.createHook(t, url, "*")
			for range events {
				_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
				require.NoError(t, err)
			}
			// The workers its jobs hold, sampled.
			var mostWorkers atomic.Int64
			sampled := make(chan struct{})
			sampling, stopSampling := context.WithCancel(ctx)
			go func() {
				defer close(sampled)
				for sampling.Err() == nil {
					var n int64
					if bundle.pool.QueryRow(sampling, "SELECT count(*) FROM hookrelay.river_job WHERE kind = 'hookrelay_deliver' AND state = 'running'").Scan(&n) == nil && n > mostWorkers.Load() {
						mostWorkers.Store(n)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			deliveries := bundle.waitDeliveryWithin(t, hook.ID, outbox.DeliveryFailed, events, time.Minute)
			stopSampling()
			<-sampled
			for _, d := range deliveries {
				require.Equal(t, len(schedule)+1, d.AttemptCount, "delivery %s", d.ID)
			}
			if tt.hanging {
				bundle.waitSettled(t)
				requests := perDelivery(rec.all())
				require.Len(t, requests, events)
				for id, reqs := range requests {
					require.Len(t, reqs, len(schedule)+1, "delivery %s", id)
				}
				t.Logf("%d requests for %d deliveries; at most %d held at once", len(rec.all()), events, held.most.Load())
				require.LessOrEqual(t, held.most.Load(), int64(jobs.HookConcurrencyDefault+heldSlack), "a hanging receiver holds at most the hook's slots")
			}
			t.Logf("at most %d workers running the hook's jobs", mostWorkers.Load())
		})
	}
}

// closedPort returns the URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + listener.Addr().String() + "/hook"
	require.NoError(t, listener.Close())
	return url
}

// TestRetryAfterOnSomeDeliveries: a receiver answering 429 with Retry-After
// to some deliveries' first attempts gets those again no sooner than it
// asked, and the others at once.
func TestRetryAfterOnSomeDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var firsts firstTimes
	limited := func(id string) bool { return oneIn(id, 5) }
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		id := r.Header.Get("webhook-id")
		if firsts.first(id) && limited(id) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: jobs.TimeoutDefault})
	hook := bundle.createHook(t, rec.URL, "*")
	const events = 100
	for range events {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
	}
	bundle.waitDeliveryWithin(t, hook.ID, outbox.DeliverySucceeded, events, time.Minute)
	bundle.waitSettled(t)
	by := perDelivery(rec.all())
	require.Len(t, by, events)
	for id, reqs := range by {
		if !limited(id) {
			require.Len(t, reqs, 1, "delivery %s", id)
			continue
		}
		require.Len(t, reqs, 2, "delivery %s", id)
		gap := reqs[1].At.Sub(reqs[0].At)
		// Retry-After is honoured within [delay, 2×delay] of the schedule's
		// first wait, 5 s ± 20 %.
		require.GreaterOrEqual(t, gap, 7*time.Second, "delivery %s came again before its Retry-After", id)
		require.LessOrEqual(t, gap, 13*time.Second, "delivery %s", id)
	}
}
