package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// orderedReceiver answers the deliveries of events {"s": subject, "e": n},
// n counting each subject's events from 0, failing the first attempt of
// every fail-th event, and counts inversions: requests for an event that
// arrived before the receiver had answered the subject's previous event
// with a success.
type orderedReceiver struct {
	*httptest.Server
	fail int

	mu         sync.Mutex
	attempts   map[[2]int]int
	succeeded  map[[2]int]time.Time
	inversions []string
	handOffs   []handOff
}

// handOff is the time from a success, at after, to the first request for
// the subject's next event, next.
type handOff struct {
	next  [2]int
	after time.Time
	took  time.Duration
}

func newOrderedReceiver(t *testing.T, fail int) *orderedReceiver {
	t.Helper()
	o := &orderedReceiver{fail: fail, attempts: map[[2]int]int{}, succeeded: map[[2]int]time.Time{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Data struct{ S, E int } `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		key := [2]int{body.Data.S, body.Data.E}
		o.mu.Lock()
		defer o.mu.Unlock()
		now := time.Now()
		o.attempts[key]++
		if key[1] > 0 {
			previous, ok := o.succeeded[[2]int{key[0], key[1] - 1}]
			switch {
			case !ok:
				o.inversions = append(o.inversions, fmt.Sprintf("subject %d event %d arrived before event %d succeeded", key[0], key[1], key[1]-1))
			case o.attempts[key] == 1:
				o.handOffs = append(o.handOffs, handOff{next: key, after: previous, took: now.Sub(previous)})
			}
		}
		if o.attempts[key] == 1 && (key[0]*31+key[1])%o.fail == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if _, ok := o.succeeded[key]; !ok {
			o.succeeded[key] = now
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(o.Close)
	return o
}

// waitingHandOffs returns, sorted, the hand-offs to events whose delivery to
// the hook was waiting when the event before them succeeded: fanned out
// before, by its fan-out's start (which may count one that had not
// committed yet, never the reverse). The others include their own
// publishing and fan-out. Call it with o.mu held.
func (o *orderedReceiver) waitingHandOffs(t *testing.T, bundle *storeBundle, hookID string) []time.Duration {
	t.Helper()
	rows, err := bundle.pool.Query(context.Background(), `SELECT (e.data->>'s')::int, (e.data->>'e')::int, d.created_at
		FROM hookrelay.deliveries d JOIN hookrelay.events e ON e.id = d.event_id WHERE d.hook_id = $1`, hookID)
	require.NoError(t, err)
	fannedOut := map[[2]int]time.Time{}
	for rows.Next() {
		var key [2]int
		var at time.Time
		require.NoError(t, rows.Scan(&key[0], &key[1], &at))
		fannedOut[key] = at
	}
	require.NoError(t, rows.Err())
	var took []time.Duration
	for _, h := range o.handOffs {
		if at, ok := fannedOut[h.next]; ok && at.Before(h.after) {
			took = append(took, h.took)
		}
	}
	slices.Sort(took)
	return took
}

// publishOrdered publishes events events of each of subjects subjects,
// round by round (every subject's event n, then every subject's n+1),
// pause apart, a round's events in transactions of 100.
func publishOrdered(t *testing.T, bundle *storeBundle, subjects, events int, pause time.Duration) {
	t.Helper()
	ctx := context.Background()
	for e := range events {
		time.Sleep(pause)
		for start := 0; start < subjects; start += 100 {
			require.NoError(t, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
				for s := start; s < min(start+100, subjects); s++ {
					if _, err := bundle.store.PublishTx(ctx, tx, &outbox.Event{
						Type: "User.Data.Updated", Subject: fmt.Sprintf("user:%d", s), Data: map[string]int{"s": s, "e": e},
					}); err != nil {
						return err
					}
				}
				return nil
			}))
		}
	}
}

// TestOrderedBySubject: a hook ordered by subject gets each subject's events
// in the order they were published, each only once the one before it
// succeeded, while one event in 20 fails its first attempt and waits the
// schedule's first step (5 s, the default); a hook in no order beside it,
// at the same receiver host, gets the same events as soon as they come.
// Both get every event.
func TestOrderedBySubject(t *testing.T) {
	t.Parallel()
	const subjects, events = 200, 10
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: jobs.TimeoutDefault})
	ordered := newOrderedReceiver(t, 20)
	unordered := newReceiver(t, nil)
	hook, err := bundle.store.CreateHook(context.Background(), &outbox.HookParams{
		URL: ordered.URL, Events: []string{"User.*"}, Ordering: outbox.OrderingSubject})
	require.NoError(t, err)
	require.Equal(t, outbox.OrderingSubject, hook.Ordering)
	other := bundle.createHook(t, unordered.URL, "User.*")

	start := time.Now()
	publishOrdered(t, bundle.storeBundle, subjects, events, 0)
	bundle.waitDeliveryWithin(t, other.ID, outbox.DeliverySucceeded, subjects*events, time.Minute)
	unorderedDone := time.Since(start)
	bundle.waitDeliveryWithin(t, hook.ID, outbox.DeliverySucceeded, subjects*events, 2*time.Minute)
	orderedDone := time.Since(start)

	ordered.mu.Lock()
	defer ordered.mu.Unlock()
	require.Empty(t, ordered.inversions)
	require.Len(t, ordered.succeeded, subjects*events)
	retried := 0
	for key, n := range ordered.attempts {
		if (key[0]*31+key[1])%20 == 0 {
			retried++
			require.Equal(t, 2, n, "event %v failed once, then succeeded", key)
		} else {
			require.Equal(t, 1, n, "event %v succeeded at once", key)
		}
	}
	require.Positive(t, retried)
	require.Len(t, unordered.all(), subjects*events, "the hook in no order got each event once")
	handOffs := ordered.waitingHandOffs(t, bundle.storeBundle, hook.ID)
	require.NotEmpty(t, handOffs)
	t.Logf("ordered: %d events in %s (unordered: %s); success to the next event's first request, of %d that waited: p50 %s, p99 %s, max %s",
		subjects*events, orderedDone.Round(time.Millisecond), unorderedDone.Round(time.Millisecond), len(handOffs),
		handOffs[len(handOffs)/2], handOffs[len(handOffs)*99/100], handOffs[len(handOffs)-1])
}

// TestOrderedBySubjectThroughKills is the goal: three serve
// processes, one of them SIGKILLed and restarted ten times while a hook
// ordered by subject gets 20,000 events of 1,000 subjects over 20 s, one in
// 20 failing its first attempt. No event reaches the receiver before the one
// before it of its subject succeeded there, and every event succeeds.
func TestOrderedBySubjectThroughKills(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	t.Parallel()
	const subjects, events, kills = 1000, 20, 10
	bundle := setupStore(t)
	ordered := newOrderedReceiver(t, 20)
	hook, err := bundle.store.CreateHook(context.Background(), &outbox.HookParams{
		URL: ordered.URL, Events: []string{"User.*"}, Ordering: outbox.OrderingSubject})
	require.NoError(t, err)
	databaseURL := bundle.pool.Config().ConnString()
	procs := []*childProcess{startServe(t, databaseURL), startServe(t, databaseURL), startServe(t, databaseURL)}

	published := make(chan struct{})
	go func() {
		defer close(published)
		publishOrdered(t, bundle, subjects, events, time.Second)
	}()
	for i := range kills {
		time.Sleep(time.Duration(1000+rand.IntN(1000)) * time.Millisecond)
		p := procs[i%len(procs)]
		p.kill()
		p.start()
	}
	<-published
	require.Eventually(t, func() bool {
		var succeeded int
		require.NoError(t, bundle.pool.QueryRow(context.Background(), `SELECT count(*) FROM hookrelay.deliveries
			WHERE hook_id = $1 AND status = 'succeeded'`, hook.ID).Scan(&succeeded))
		return succeeded == subjects*events
	}, 5*time.Minute, 100*time.Millisecond)

	ordered.mu.Lock()
	defer ordered.mu.Unlock()
	require.Empty(t, ordered.inversions)
	require.Len(t, ordered.succeeded, subjects*events)
	handOffs := ordered.waitingHandOffs(t, bundle, hook.ID)
	require.NotEmpty(t, handOffs)
	t.Logf("success to the next event's first request, of %d that waited: p50 %s, p99 %s, max %s",
		len(handOffs), handOffs[len(handOffs)/2], handOffs[len(handOffs)*99/100], handOffs[len(handOffs)-1])
}

// TestOrderedWithinOneJob: a subject's events written in one transaction,
// interleaved with another subject's, fan out to one job, which sends each
// once the one before it of its subject succeeded, running again at once
// rather than waiting to be woken.
func TestOrderedWithinOneJob(t *testing.T) {
	t.Parallel()
	const events = 20
	ctx := context.Background()
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: jobs.TimeoutDefault})
	ordered := newOrderedReceiver(t, 1<<30)
	hook, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: ordered.URL, Events: []string{"User.*"}, Ordering: outbox.OrderingSubject})
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
		for e := range events {
			for s := range 2 {
				if _, err := bundle.store.PublishTx(ctx, tx, &outbox.Event{
					Type: "User.Data.Updated", Subject: fmt.Sprintf("user:%d", s), Data: map[string]int{"s": s, "e": e},
				}); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 2*events)
	require.Len(t, bundle.deliverJobs(t), 1, "one job")

	ordered.mu.Lock()
	defer ordered.mu.Unlock()
	require.Empty(t, ordered.inversions)
	require.Len(t, ordered.succeeded, 2*events)
	handOffs := ordered.waitingHandOffs(t, bundle.storeBundle, hook.ID)
	require.Len(t, handOffs, 2*(events-1), "every event but the first of each subject waited")
	t.Logf("success to the next event's first request: p50 %s, max %s", handOffs[len(handOffs)/2], handOffs[len(handOffs)-1])
}

// TestHeldBackWaitsForItsHead: while the first event of a subject fails
// (its receiver answers 500), the job holding back the others sleeps until
// the head's next attempt (the schedule's second step, 5 minutes), not 2 s
// at a time: a subject held back by a dead receiver costs a run or two per
// attempt of its head, not one every 2 s for hours.
func TestHeldBackWaitsForItsHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: jobs.RetryScheduleDefault, Timeout: jobs.TimeoutDefault})
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	_, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL, Events: []string{"User.*"}, Ordering: outbox.OrderingSubject})
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
		for range 3 {
			if _, err := bundle.store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Data.Updated", Subject: "user:1"}); err != nil {
				return err
			}
		}
		return nil
	}))
	// The head's first attempt, then its second, 5 s later.
	reqs := rec.waitFor(t, 30*time.Second, func(r []received) bool { return len(r) == 2 })
	require.Equal(t, reqs[0].Header.Get("webhook-id"), reqs[1].Header.Get("webhook-id"), "only the head is sent")
	require.Eventually(t, func() bool {
		var later bool
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT coalesce(bool_and(state <> 'running' AND scheduled_at > now() + interval '4 minutes'), false)
			FROM hookrelay.river_job WHERE kind = 'hookrelay_deliver'`).Scan(&later))
		return later
	}, 10*time.Second, 20*time.Millisecond, "the job sleeps until the head's third attempt")
	require.Len(t, rec.all(), 2)
}

// TestJobWakes: a run that makes a delivery final wakes the deliver job
// holding back its successor in another process by a notification, heard
// once its transaction commits and never if it rolls back. Any role that
// can log in may notify too: what is not a job ID is skipped, and a wake
// only has a run look again.
func TestJobWakes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rights := setupRightsOn(t, setupStore(t))
	listener, err := rights.store.ListenJobWakes(ctx)
	require.NoError(t, err)
	t.Cleanup(listener.Close)

	tx, err := rights.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, rights.store.WakeJobsTx(ctx, tx, []int64{7}))
	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, pgx.BeginFunc(ctx, rights.pool, func(tx pgx.Tx) error {
		return rights.store.WakeJobsTx(ctx, tx, []int64{1, 2, 3})
	}))
	_, err = rights.writerConn.Exec(ctx, "SELECT pg_notify('hookrelay.deliver_wake', 'x 4 -- 5 99999999999999999999')")
	require.NoError(t, err)

	wait := func() []int64 {
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ids, err := listener.Wait(waitCtx)
		require.NoError(t, err)
		return ids
	}
	require.Equal(t, []int64{1, 2, 3}, wait(), "the rolled back wake was never heard")
	require.Equal(t, []int64{4, 5}, wait())
}
