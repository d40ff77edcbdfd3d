package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// TestCrashSafety SIGKILLs the pipeline again and again while events flow,
// with default settings, and checks that every (event, hook) pair is
// delivered at least once, and that what each killed process held was sent
// again within 60 s of its kill (invariant 7).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test takes about a minute")
	}
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	databaseURL := bundle.pool.Config().ConnString()

	rec := newReceiver(t, nil)
	hookA := bundle.createHook(t, rec.URL+"/a", "*")
	hookB := bundle.createHook(t, rec.URL+"/b", "*")

	proc := startServe(t, databaseURL)

	const events, minKills = 5000, 10
	var eventIDs []string
	published := make(chan struct{})
	go func() {
		defer close(published)
		for len(eventIDs) < events {
			var batch []string // counted only once committed
			err := pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
				for range 25 {
					id, err := bundle.store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Created", Data: map[string]any{"n": len(eventIDs)}})
					if err != nil {
						return err
					}
					batch = append(batch, id)
				}
				return nil
			})
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			eventIDs = append(eventIDs, batch...)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// held are the pending deliveries of the jobs that each kill stranded.
	var kills []*crashKill
	stranded := map[int64]bool{}
	kill := func() {
		proc.kill()
		k := &crashKill{at: time.Now(), held: heldDeliveries(t, bundle, stranded)}
		kills = append(kills, k)
		proc.start()
	}
	for done := false; !done || len(kills) < minKills; {
		select {
		case <-published:
			done = true
			published = nil
		case <-time.After(time.Duration(300+rand.IntN(900)) * time.Millisecond):
		}
		kill()
	}
	kill() // once more after the last event, then a final run

	// resent tells whether every delivery a killed process held arrived
	// after the kill (one that arrived before it, unrecorded, comes again).
	resent := func(reqs []received) bool {
		last := map[string]time.Time{}
		for _, req := range reqs {
			id := req.Header.Get("webhook-id")
			last[id] = maxTime(last[id], req.At)
		}
		for _, k := range kills {
			for _, id := range k.held {
				if !last[id].After(k.at) {
					return false
				}
			}
		}
		return true
	}
	type pair struct{ event, hook string }
	var seen map[pair]int
	var requests int
	deadline := time.Now().Add(4 * time.Minute)
	for {
		reqs := rec.all()
		requests = len(reqs)
		seen = make(map[pair]int, requests)
		for _, req := range reqs {
			var body struct{ EventID, HookID string }
			require.NoError(t, json.Unmarshal(req.Body, &body))
			seen[pair{body.EventID, body.HookID}]++
		}
		if (len(seen) == 2*events && resent(reqs)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	var missing int
	for _, id := range eventIDs {
		for _, hook := range []string{hookA.ID, hookB.ID} {
			if seen[pair{id, hook}] == 0 {
				missing++
			}
		}
	}
	if missing > 0 {
		logText, _ := os.ReadFile(proc.logPath)
		t.Logf("serve log tail:\n%s", tail(string(logText), 3000))
	}
	require.Len(t, eventIDs, events)
	require.Zero(t, missing, "every (event, hook) pair is delivered at least once")
	require.Len(t, seen, 2*events, "no delivery for an unknown pair")

	// Recovery: from each kill to the first arrival after it of the last of
	// the deliveries its process held.
	arrivals := map[string][]time.Time{}
	for _, req := range rec.all() {
		id := req.Header.Get("webhook-id")
		arrivals[id] = append(arrivals[id], req.At)
	}
	var worst time.Duration
	held := 0
	for _, k := range kills {
		held += len(k.held)
		for _, id := range k.held {
			i := slices.IndexFunc(arrivals[id], func(at time.Time) bool { return at.After(k.at) })
			require.NotEqual(t, -1, i, "delivery %s held at a kill was sent again after it", id)
			worst = max(worst, arrivals[id][i].Sub(k.at))
		}
	}
	fmt.Printf("crash safety: %d events, %d deliveries expected, %d received, %d duplicates, %d SIGKILLs; "+
		"%d deliveries held by killed processes, all sent again within %.1f s of their kill\n",
		events, 2*events, requests, requests-len(seen), len(kills), held, worst.Seconds())
	require.LessOrEqual(t, worst, 60*time.Second, "what a killed process held is sent within 60 s (invariant 7)")

	var notSucceeded int
	require.Eventually(t, func() bool {
		return bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status <> 'succeeded'").Scan(&notSucceeded) == nil && notSucceeded == 0
	}, time.Minute, 100*time.Millisecond)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

type crashKill struct {
	at   time.Time
	held []string
}

// heldDeliveries returns the pending deliveries of the River jobs left
// running by a killed process, except those of jobs stranded by an earlier
// kill, and adds the jobs to stranded.
func heldDeliveries(t *testing.T, bundle *storeBundle, stranded map[int64]bool) []string {
	t.Helper()
	rows, err := bundle.pool.Query(context.Background(), `
		SELECT j.id, d.id FROM hookrelay.river_job j
		JOIN hookrelay.deliveries d ON d.id::text = ANY(string_to_array(j.args->>'deliveries', ' ')) AND d.status = 'pending'
		WHERE j.state = 'running' AND j.kind = 'hookrelay_deliver'`)
	require.NoError(t, err)
	defer rows.Close()
	var held []string
	newJobs := map[int64]bool{}
	for rows.Next() {
		var jobID int64
		var deliveryID string
		require.NoError(t, rows.Scan(&jobID, &deliveryID))
		if !stranded[jobID] {
			newJobs[jobID] = true
			held = append(held, deliveryID)
		}
	}
	require.NoError(t, rows.Err())
	maps.Copy(stranded, newJobs)
	return held
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
