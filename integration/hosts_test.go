package integration

import (
	"context"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// inFlightPeak counts requests in flight and keeps the most seen at once.
type inFlightPeak struct{ now, most atomic.Int64 }

// heldSlack is how many more requests than a sender's slots a receiver may
// see held at once: a slot is free as soon as the sender gives a request up
// at its timeout, and the receiver's handler of it notices the closed
// connection a moment later, when the next request may have arrived.
const heldSlack = 8

func (m *inFlightPeak) enter() {
	n := m.now.Add(1)
	for most := m.most.Load(); n > most && !m.most.CompareAndSwap(most, n); most = m.most.Load() {
	}
}

func (m *inFlightPeak) leave() { m.now.Add(-1) }

// TestHostConnections: a backlog to three hooks of one receiver host,
// drained by serve with its defaults, keeps its requests in flight within
// the host's slots and each hook's, over as many kept-alive connections at
// most, over HTTP and over HTTPS, where each connection is a TLS handshake.
func TestHostConnections(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		name := map[bool]string{false: "HTTP", true: "HTTPS"}[https]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var host inFlightPeak
			hooks := map[string]*inFlightPeak{"/a": {}, "/b": {}, "/c": {}}
			respond := func(w http.ResponseWriter, r *http.Request, _ int) {
				host.enter()
				hooks[r.URL.Path].enter()
				defer host.leave()
				defer hooks[r.URL.Path].leave()
				time.Sleep(2 * time.Millisecond) // so that requests overlap
				w.WriteHeader(http.StatusNoContent)
			}
			var rec *receiver
			var env []string
			if https {
				rec = newTLSReceiver(t, respond)
				certFile := filepath.Join(t.TempDir(), "receiver.pem")
				cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.Certificate().Raw})
				require.NoError(t, os.WriteFile(certFile, cert, 0o600))
				env = append(env, "SSL_CERT_FILE="+certFile) // serve trusts it as users' serve trusts their receivers
			} else {
				rec = newReceiver(t, respond)
			}
			bundle := setupStore(t)
			for path := range hooks {
				bundle.createHook(t, rec.URL+path, "*")
			}
			const events = 2000
			_, err := bundle.pool.Exec(ctx, "SELECT hookrelay.publish('User.Created', '{}') FROM generate_series(1, $1)", events)
			require.NoError(t, err)
			startServe(t, bundle.pool.Config().ConnString(), env...)

			deliveries := events * len(hooks)
			require.Eventually(t, func() bool {
				var n int
				require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status = 'succeeded'").Scan(&n))
				return n == deliveries
			}, 2*time.Minute, 50*time.Millisecond)
			requests := perDelivery(rec.all())
			require.Len(t, requests, deliveries)
			for id, reqs := range requests {
				require.Len(t, reqs, 1, "delivery %s", id)
			}
			t.Logf("%d deliveries: %d connections (at most %d open at once), %d TLS handshakes; at most %d requests in flight to the host",
				deliveries, rec.connections.Load(), rec.open.most.Load(), rec.handshakes.Load(), host.most.Load())
			require.LessOrEqual(t, host.most.Load(), int64(jobs.HostConcurrencyDefault))
			for path, hook := range hooks {
				require.LessOrEqual(t, hook.most.Load(), int64(jobs.HookConcurrencyDefault), path)
			}
			// The bound is on connections open at once: one the sender
			// closed (after an error, say) may be replaced.
			require.LessOrEqual(t, rec.open.most.Load(), int64(jobs.HostConcurrencyDefault), "no more connections open than the host's slots")
			require.LessOrEqual(t, rec.connections.Load(), int64(2*jobs.HostConcurrencyDefault), "connections are kept alive and reused")
			if https {
				require.Equal(t, rec.connections.Load(), rec.handshakes.Load())
			}
		})
	}
}

// TestHangingHookLeavesItsHostToOthers: of two hooks of one receiver host,
// one hangs every request until the timeout; it holds its hook's slots of
// the host's, and the other hook's deliveries arrive at once.
func TestHangingHookLeavesItsHostToOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var hanging inFlightPeak
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/hang" {
			hanging.enter()
			defer hanging.leave()
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	bundle := setupPipeline(t, nil)
	bundle.createHook(t, rec.URL+"/hang", "*")
	ok := bundle.createHook(t, rec.URL+"/ok", "*")

	const events = 400
	published := make(map[string]time.Time, events)
	ticker := time.NewTicker(time.Second / 200)
	defer ticker.Stop()
	for range events {
		<-ticker.C
		id, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		published[id] = time.Now()
	}
	bundle.waitDelivery(t, ok.ID, outbox.DeliverySucceeded, events)
	var took []time.Duration
	for _, r := range rec.all() {
		if !strings.Contains(string(r.Body), ok.ID) {
			continue
		}
		var eventID string
		for id := range published {
			if strings.Contains(string(r.Body), `"eventId":"`+id+`"`) {
				eventID = id
			}
		}
		require.NotEmpty(t, eventID)
		took = append(took, r.At.Sub(published[eventID]))
	}
	require.Len(t, took, events)
	slices.Sort(took)
	t.Logf("the answering hook: p50 %s, p99 %s, max %s; at most %d requests held by the hanging one",
		took[len(took)/2], took[len(took)*99/100], took[len(took)-1], hanging.most.Load())
	require.LessOrEqual(t, hanging.most.Load(), int64(jobs.HookConcurrencyDefault+heldSlack), "the hanging hook holds its hook's slots only, not its host's")
	require.Less(t, took[len(took)*99/100], time.Second, "the hanging hook's neighbour on its host is not held back")
}
