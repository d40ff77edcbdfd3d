package integration

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// mostInWindow is the most of times (sorted) that fall in any window
// [t, t+window).
func mostInWindow(times []time.Time, window time.Duration) int {
	most := 0
	for i, j := 0, 0; i < len(times); i++ {
		for j < len(times) && times[j].Sub(times[i]) < window {
			j++
		}
		most = max(most, j-i)
	}
	return most
}

// TestRateLimitAcrossProcesses: a backlog of 1,000 deliveries to a hook
// limited to 50/s, drained by three serve processes with their defaults:
// no second holds more than 50 of its requests (up to 53 with jitter, 60
// allowed), the backlog drains at the rate and no faster, every delivery is
// sent once with one attempt (waiting for the rate uses none), and another
// hook of the same events gets all of them at once.
//
// How close to the rate the backlog drains is a figure of speed, which
// `hookrelay bench` measures (48–49/s here): the test holds it between 40/s
// and 50/s only, since a busy machine's late timers cost a paced hook
// requests (45/s in a CI run beside other packages' tests), never more.
//
// It runs alone, before the parallel tests: on a machine busy with them,
// the receiver's own clock readings jitter by more than the pace's margin.
func TestRateLimitAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	arrivals := map[string][]time.Time{}
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		arrivals[r.URL.Path] = append(arrivals[r.URL.Path], time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	bundle := setupStore(t)
	limited, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL + "/limited", Events: []string{"*"}, RateLimit: "50/s"})
	require.NoError(t, err)
	require.Equal(t, "50/s", limited.RateLimit)
	bundle.createHook(t, rec.URL+"/free", "*")
	const events = 1000
	_, err = bundle.pool.Exec(ctx, "SELECT hookrelay.publish('User.Created', '{}') FROM generate_series(1, $1)", events)
	require.NoError(t, err)
	url := bundle.pool.Config().ConnString()
	for range 3 {
		startServe(t, url)
	}
	bundle.waitDeliveryWithin(t, limited.ID, outbox.DeliverySucceeded, events, 2*time.Minute)

	mu.Lock()
	defer mu.Unlock()
	got, free := arrivals["/limited"], arrivals["/free"]
	slices.SortFunc(got, time.Time.Compare)
	slices.SortFunc(free, time.Time.Compare)
	require.Len(t, got, events, "each delivery sent once")
	require.Len(t, free, events)
	rate := float64(len(got)-1) / got[len(got)-1].Sub(got[0]).Seconds()
	most := mostInWindow(got, time.Second)
	// Both hooks' first requests leave together, once serve runs.
	drain, freeDrain := got[len(got)-1].Sub(got[0]), free[len(free)-1].Sub(got[0])
	t.Logf("limited hook: %d requests in %s, %.2f/s, at most %d in a second; the other hook's last %s after the limited hook's first",
		len(got), drain.Round(time.Millisecond), rate, most, freeDrain.Round(time.Millisecond))
	// Requests leave at their times, 1 % apart more than the rate's, or not
	// at all when more than an interval late; what jitter remains between
	// processes and the receiver (this test's process, under the race
	// detector) still puts up to three more in a second: 50–53 measured, short of the goal
	// of 50; and a reservation that comes back late sends its last requests
	// into the next one's time (a known limit, README): 56 seen once here,
	// 52–77 beside CPU hogs, where the receiver is starved too. Unlimited,
	// the backlog would arrive within a second.
	require.LessOrEqual(t, most, 60, "no second holds much more than the rate")
	require.LessOrEqual(t, rate, 50.0, "the backlog drains no faster than the rate")
	require.GreaterOrEqual(t, rate, 40.0, "the backlog drains at about the rate")
	require.Less(t, freeDrain, drain/2, "the other hook is not held back")
	var attempts int
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT max(attempts) FROM hookrelay.deliveries WHERE hook_id = $1", limited.ID).Scan(&attempts))
	require.Equal(t, 1, attempts, "waiting for the rate uses no attempt")
}

// TestRateReservationCountsFromItsLock: a reservation that waits for
// another one's lock on the hook's rate state counts its times from when
// it got the lock, never from before: counted from when its statement
// began, every request of it left late by the wait (up to 1.4 s beside CPU
// hogs), into the next reservation's second.
func TestRateReservationCountsFromItsLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	hook, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: "http://127.0.0.1:9/", Events: []string{"*"}, RateLimit: "50/s"})
	require.NoError(t, err)
	_, err = bundle.store.ReserveRate(ctx, hook.ID, 1, time.Second)
	require.NoError(t, err)

	// Another reservation holds the hook's rate state while the next one
	// waits; the hook has been idle, so that one's first request is due
	// at once.
	tx, err := bundle.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "UPDATE hookrelay.hook_rates SET tat = now() - interval '1 hour' WHERE hook_id = $1", hook.ID)
	require.NoError(t, err)
	reserved := make(chan *outbox.Reservation, 1)
	go func() {
		r, err := bundle.store.ReserveRate(ctx, hook.ID, 10, time.Second)
		assert.NoError(t, err)
		reserved <- r
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%hook_rates%')`).Scan(&waiting))
		return waiting
	}, 10*time.Second, 5*time.Millisecond)
	// A wait far longer than the answer's way back: counted from its
	// statement's start, the reservation would be due that long before the
	// release.
	time.Sleep(300 * time.Millisecond)
	released := time.Now()
	require.NoError(t, tx.Commit(ctx))

	r := <-reserved
	require.NotNil(t, r)
	require.Equal(t, 10, r.Reserved)
	// Never early: the first request is due no sooner than the lock was
	// released (within the database clock's microsecond).
	require.False(t, r.Due(0).Before(released.Add(-time.Millisecond)),
		"the reservation counts from its lock: first request due %s before the lock was released", released.Sub(r.Due(0)))
}
