package integration

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
// connection a moment later (on a busy machine, several), when the next
// request may have arrived.
const heldSlack = 16

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
			serve := startServe(t, bundle.pool.Config().ConnString(), env...)

			deliveries := events * len(hooks)
			require.Eventually(t, func() bool {
				var n int
				require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status = 'succeeded'").Scan(&n))
				return n == deliveries
			}, 2*time.Minute, 50*time.Millisecond)
			requests := perDelivery(rec.all())
			require.Len(t, requests, deliveries)
			for id, reqs := range requests {
				if len(reqs) != 1 {
					logText, _ := os.ReadFile(serve.logPath)
					t.Logf("serve's log:\n%s", logText)
				}
				require.Len(t, reqs, 1, "delivery %s", id)
			}
			t.Logf("%d deliveries: %d connections (at most %d open at once), %d TLS handshakes; at most %d requests in flight to the host",
				deliveries, rec.connections.Load(), rec.open.most.Load(), rec.handshakes.Load(), host.most.Load())
			require.LessOrEqual(t, host.most.Load(), int64(jobs.HostConcurrencyDefault))
			for path, hook := range hooks {
				require.LessOrEqual(t, hook.most.Load(), int64(jobs.HookConcurrencyDefault), path)
			}
			// The bound is on connections open at once: one the sender
			// closed (after an error, say) may be replaced. Hooks that a busy
			// machine's slow handshakes made look stalled for a moment let
			// the others use the host's overflow connections: 1.5 times its
			// slots at most.
			require.LessOrEqual(t, rec.open.most.Load(), int64(jobs.HostConcurrencyDefault*3/2), "no more connections open than the host's slots")
			require.LessOrEqual(t, rec.connections.Load(), int64(2*jobs.HostConcurrencyDefault), "connections are kept alive and reused")
			if https {
				require.Equal(t, rec.connections.Load(), rec.handshakes.Load())
			}
		})
	}
}

// TestHangingHooksLeaveTheirHostToOthers: two hooks of one tenant hang
// every request until the timeout; a hook of another tenant at the same
// receiver host, scheme and port answers at once. Serve, with its defaults,
// decides stalls per hook: the hanging hooks hold half of the host at most,
// and the answering hook's deliveries arrive at once, during the hanging
// hooks' burst and after it, while their backlog waits. When the hanging
// receiver answers again, its deliveries go out again at once.
//
// It runs alone, before the parallel tests, whose load it would measure.
func TestHangingHooksLeaveTheirHostToOthers(t *testing.T) {
	ctx := context.Background()
	var hanging inFlightPeak
	answer := make(chan struct{}) // closed when the hanging hooks answer again
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path != "/b" {
			hanging.enter()
			defer hanging.leave()
			select {
			case <-r.Context().Done():
				return
			case <-answer:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	bundle := setupStore(t)
	newHook := func(path, tenant string) *outbox.Hook {
		hook, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL + path, Events: []string{"*"}, TenantID: tenant})
		require.NoError(t, err)
		return hook
	}
	a1, a2 := newHook("/a1", "tenant-a"), newHook("/a2", "tenant-a")
	b := newHook("/b", "tenant-b")
	startServe(t, bundle.pool.Config().ConnString())

	// Tenant A publishes 40 events a second for 30 s, tenant B 10 a second
	// for 60 s.
	const burst, run = 30 * time.Second, 60 * time.Second
	var mu sync.Mutex
	published := map[string]time.Time{} // B's events
	publish := func(tenant string, every, until time.Duration) error {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for end := time.Now().Add(until); time.Now().Before(end); <-ticker.C {
			id, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created", TenantID: tenant})
			if err != nil {
				return err
			}
			if tenant == "tenant-b" {
				mu.Lock()
				published[id] = time.Now()
				mu.Unlock()
			}
		}
		return nil
	}
	start := time.Now()
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = publish("tenant-a", time.Second/40, burst) })
	wg.Go(func() { errs[1] = publish("tenant-b", time.Second/10, run) })
	wg.Wait()
	require.NoError(t, errors.Join(errs[:]...))
	bundle.waitDeliveryWithin(t, b.ID, outbox.DeliverySucceeded, len(published), time.Minute)

	var during, after []time.Duration
	for _, r := range rec.all() {
		if r.Header.Get("webhook-id") == "" || !strings.Contains(string(r.Body), `"hookId":"`+b.ID+`"`) {
			continue
		}
		var body struct {
			EventID string `json:"eventId"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &body))
		at, ok := published[body.EventID]
		require.True(t, ok)
		if at.Sub(start) < burst {
			during = append(during, r.At.Sub(at))
		} else {
			after = append(after, r.At.Sub(at))
		}
	}
	require.Len(t, append(during, after...), len(published), "one request per delivery")
	var pending int
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status = 'pending' AND hook_id = ANY($1)",
		[]string{a1.ID, a2.ID}).Scan(&pending))
	for name, took := range map[string][]time.Duration{"during the burst": during, "after it": after} {
		slices.Sort(took)
		p99, most := took[len(took)*99/100], took[len(took)-1]
		t.Logf("the answering hook %s: p50 %s, p99 %s, max %s (%d deliveries)", name, took[len(took)/2], p99, most, len(took))
		require.LessOrEqual(t, p99, 500*time.Millisecond, "the hanging hooks' neighbour on their host is not held back %s", name)
		require.LessOrEqual(t, most, 2*time.Second, name)
	}
	t.Logf("at most %d requests held by the hanging hooks; %d of their deliveries pending", hanging.most.Load(), pending)
	require.LessOrEqual(t, hanging.most.Load(), int64(jobs.HostConcurrencyDefault+heldSlack), "they never held more than the host's slots")
	require.Greater(t, pending, 1000, "the hanging hooks have a backlog")

	// The hanging receiver answers again: its hooks get their share back.
	before := len(rec.all())
	close(answer)
	released := time.Now()
	require.Eventually(t, func() bool {
		for _, r := range rec.all()[before:] {
			if strings.Contains(string(r.Body), a1.ID) {
				t.Logf("the first new request to a recovered hook came %s after its receiver answered again", r.At.Sub(released))
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
}

// TestStalledTenantHoldsBoundedRequests: 20 hooks of one tenant on 10
// receiver ports hang every request until the timeout, with a backlog each.
// Serve, with its defaults, holds at most TenantConcurrency requests (and
// connections) for them, where slots per hook and host alone allowed 1,280,
// and keeps trying them; another tenant's answering hook is served at once
// meanwhile.
//
// It runs alone, before the parallel tests, whose load it would measure.
func TestStalledTenantHoldsBoundedRequests(t *testing.T) {
	ctx := context.Background()
	const hooks, ports = 20, 10
	var held inFlightPeak
	var receivers []*receiver
	for range ports {
		receivers = append(receivers, newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			held.enter()
			defer held.leave()
			<-r.Context().Done()
		}))
	}
	answering := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) })
	bundle := setupStore(t)
	for i := range hooks {
		_, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: fmt.Sprintf("%s/%d", receivers[i%ports].URL, i), Events: []string{"*"}, TenantID: "tenant-a"})
		require.NoError(t, err)
	}
	_, err := bundle.pool.Exec(ctx, "SELECT hookrelay.publish('User.Created', '{}', tenant_id => 'tenant-a') FROM generate_series(1, 200)")
	require.NoError(t, err)
	_, err = bundle.store.CreateHook(ctx, &outbox.HookParams{URL: answering.URL, Events: []string{"*"}, TenantID: "tenant-b"})
	require.NoError(t, err)
	serve := startServe(t, bundle.pool.Config().ConnString())

	fds := func() int {
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", serve.cmd.Process.Pid))
		require.NoError(t, err)
		return len(entries)
	}
	goroutines := func() int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+serve.addr+"/debug/pprof/goroutine?debug=1", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var n int
		_, err = fmt.Fscanf(resp.Body, "goroutine profile: total %d", &n)
		require.NoError(t, err)
		return n
	}
	idleFDs, idleGoroutines := fds(), goroutines()

	// Tenant B publishes every 100 ms while tenant A's hooks fill their
	// share, stall and time out twice.
	var mostFDs, mostGoroutines int
	var stalledHeld []int
	var took []time.Duration
	start := time.Now()
	for time.Since(start) < 2*jobs.TimeoutDefault+5*time.Second {
		published := time.Now()
		id, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created", TenantID: "tenant-b"})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			return slices.ContainsFunc(answering.all(), func(r received) bool { return strings.Contains(string(r.Body), id) })
		}, 10*time.Second, time.Millisecond)
		took = append(took, time.Since(published))
		mostFDs, mostGoroutines = max(mostFDs, fds()), max(mostGoroutines, goroutines())
		if time.Since(start) > 2*jobs.TimeoutDefault {
			// The requests the hooks made before they stalled have timed
			// out.
			stalledHeld = append(stalledHeld, int(held.now.Load()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(took)
	// Hooks that waited for the tenant's slots while others held them got
	// theirs as answering hooks when the first requests timed out: the
	// stalled hooks' half is not reached yet.
	slices.Sort(stalledHeld)
	t.Logf("requests held at once: %d, %v once the hooks were stalled; serve's file descriptors %d → %d, goroutines %d → %d; "+
		"the other tenant's hook: p50 %s, max %s", held.most.Load(), stalledHeld, idleFDs, mostFDs, idleGoroutines, mostGoroutines,
		took[len(took)/2], took[len(took)-1])
	require.LessOrEqual(t, held.most.Load(), int64(jobs.TenantConcurrencyDefault+heldSlack), "the tenant's bound")
	require.Greater(t, stalledHeld[len(stalledHeld)/2], jobs.TenantConcurrencyDefault/4, "the hooks kept trying")
	// A connection per request in flight, beside the database pool's 25
	// (HOOKRELAY_DB_MAX_CONNS), which grow from idle under the load.
	require.LessOrEqual(t, mostFDs, idleFDs+jobs.TenantConcurrencyDefault+25+heldSlack, "a connection per request in flight")
	require.Less(t, took[len(took)-1], 2*time.Second, "another tenant's answering hook is served meanwhile")
}

// TestProcessBoundsRequestsInFlight: 48 hooks of three tenants, two per
// receiver port, whose receivers answer each request after a second, with a
// backlog each, want more than a process's requests in flight; serve, with
// its defaults, fills the process's ProcessConcurrency and holds no more.
//
// It runs alone, before the parallel tests, whose load it would measure.
func TestProcessBoundsRequestsInFlight(t *testing.T) {
	ctx := context.Background()
	const tenants, hooksPerTenant, events = 3, 16, 400
	var held inFlightPeak
	var receivers []*receiver
	for range tenants * hooksPerTenant / 2 {
		receivers = append(receivers, newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			held.enter()
			defer held.leave()
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
				w.WriteHeader(http.StatusNoContent)
			}
		}))
	}
	bundle := setupStore(t)
	for tenant := range tenants {
		for i := range hooksPerTenant {
			url := fmt.Sprintf("%s/%d/%d", receivers[(tenant*hooksPerTenant+i)/2].URL, tenant, i)
			_, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: url, Events: []string{"*"}, TenantID: fmt.Sprint("tenant-", tenant)})
			require.NoError(t, err)
		}
		_, err := bundle.pool.Exec(ctx, "SELECT hookrelay.publish('User.Created', '{}', tenant_id => $1) FROM generate_series(1, $2)",
			fmt.Sprint("tenant-", tenant), events)
		require.NoError(t, err)
	}
	startServe(t, bundle.pool.Config().ConnString())

	// Sampled every 100 ms from 3 s on, while the backlog drains: logged.
	var samples []int
	start := time.Now()
	for time.Since(start) < 8*time.Second {
		if time.Since(start) > 3*time.Second {
			samples = append(samples, int(held.now.Load()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(samples)
	t.Logf("requests held at once: at most %d; from 3 s on, median %d, max %d", held.most.Load(), samples[len(samples)/2], samples[len(samples)-1])
	require.LessOrEqual(t, held.most.Load(), int64(jobs.ProcessConcurrencyDefault+heldSlack), "the process's bound")
	require.GreaterOrEqual(t, held.most.Load(), int64(jobs.ProcessConcurrencyDefault-heldSlack), "the hooks filled the process")
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status = 'succeeded'").Scan(&n))
		return n == events*hooksPerTenant*tenants
	}, 2*time.Minute, 100*time.Millisecond)
}
