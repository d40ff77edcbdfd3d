//go:build faults

// Package faults pushes events through `hookrelay serve` processes while it
// kills them, stops and pauses Postgres, and answers through misbehaving
// receivers, then checks every (event, hook) pair. It has its own Postgres
// container, which it stops and pauses. Run it with
//
//	go test -tags faults -v ./integration/faults
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/integration/internal/pgtest"
	"github.com/hookrelay/hookrelay/outbox"
)

var pg *pgtest.Container

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if pg, err = pgtest.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pg.Terminate()
	return m.Run()
}

// proxy forwards a fixed local port to Postgres, whose mapped port changes
// when its container is stopped and started.
type proxy struct {
	ln     net.Listener
	target atomic.Value // "host:port"
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln}
	p.target.Store(target)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.DialTimeout("tcp", p.target.Load().(string), 2*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func endpoint(t *testing.T) string {
	ep, err := pg.Docker().PortEndpoint(context.Background(), "5432/tcp", "")
	require.NoError(t, err)
	return ep
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	const events = 20000
	start := time.Now()

	// The database, through the proxy.
	direct := pg.NewDatabase(t)
	dbName := direct[strings.LastIndex(direct, "/")+1 : strings.Index(direct, "?")]
	px := newProxy(t, endpoint(t))
	url := fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/%s?sslmode=disable", px.port(), dbName)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	store, err := outbox.NewStore(pool, nil)
	require.NoError(t, err)

	// Receivers: A misbehaves in every way short of 410, B is healthy, C
	// answers 410 once and must end disabled.
	type pair struct{ event, hook string }
	var mu sync.Mutex
	seen := map[pair][]time.Time{} // receipts
	record := func(body []byte) {
		var b struct{ EventID, HookID string }
		if json.Unmarshal(body, &b) == nil {
			mu.Lock()
			p := pair{b.EventID, b.HookID}
			seen[p] = append(seen[p], time.Now())
			mu.Unlock()
		}
	}
	var receiverFaults atomic.Int64
	chaotic := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch n := rand.IntN(100); {
		case n < 8:
			receiverFaults.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		case n < 10:
			receiverFaults.Add(1)
			select { // hang past the timeout
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		case n < 12:
			receiverFaults.Add(1)
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
		case n < 14:
			receiverFaults.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case n < 15:
			receiverFaults.Add(1) // slow, byte by byte, past the timeout
			w.WriteHeader(http.StatusOK)
			for i := 0; i < 30 && r.Context().Err() == nil; i++ {
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		case n < 16:
			receiverFaults.Add(1) // a huge body, then success
			record(body)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(strings.Repeat("z", 8<<20)))
		default:
			record(body)
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer chaotic.Close()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		record(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer healthy.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	hookA, err := store.CreateHook(ctx, &outbox.HookParams{URL: chaotic.URL, Events: []string{"*"}})
	require.NoError(t, err)
	hookB, err := store.CreateHook(ctx, &outbox.HookParams{URL: healthy.URL, Events: []string{"*"}})
	require.NoError(t, err)
	hookC, err := store.CreateHook(ctx, &outbox.HookParams{URL: gone.URL, Events: []string{"*"}})
	require.NoError(t, err)

	// Two serve processes.
	binary := buildBinary(t)
	logPath := filepath.Join(t.TempDir(), "serve.log")
	addrs := []string{freeAddr(t), freeAddr(t)}
	procs := make([]*exec.Cmd, 2)
	startProc := func(i int) {
		log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		require.NoError(t, err)
		defer log.Close()
		cmd := exec.Command(binary, "serve")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "HOOKRELAY_ADDR="+addrs[i], "HOOKRELAY_ADMIN_TOKEN=faults",
			"HOOKRELAY_ALLOW_CIDRS=127.0.0.1", "HOOKRELAY_TIMEOUT=1s",
			"HOOKRELAY_RETRY_SCHEDULE=200ms,500ms,1s,2s,2s,2s,2s,2s,2s,2s,5s,5s,5s,5s,5s")
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start())
		procs[i] = cmd
	}
	kill := func(i int) {
		if procs[i] != nil {
			_ = procs[i].Process.Signal(syscall.SIGKILL)
			_ = procs[i].Wait()
			procs[i] = nil
		}
	}
	defer func() { kill(0); kill(1) }()
	startProc(0)
	startProc(1)

	// Publish, retrying transactions that fail during outages.
	published := make(chan struct{})
	var publishErrors atomic.Int64
	go func() {
		defer close(published)
		for n := 0; n < events; {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				for i := range 20 {
					if _, err := store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Created", Data: map[string]any{"n": n + i}}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				publishErrors.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			n += 20
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// Inject faults while events flow, each kind several times.
	faults := map[string]int{}
	type injected struct {
		kind string
		at   time.Time
	}
	var injections []injected
	note := func(kind string) {
		faults[kind]++
		injections = append(injections, injected{kind, time.Now()})
	}
	var readyzDown bool
	inject := []func(){
		func() {
			i := rand.IntN(2)
			kill(i)
			note("SIGKILL one of two serve")
			time.Sleep(300 * time.Millisecond)
			startProc(i)
		},
		func() {
			kill(0)
			kill(1)
			note("SIGKILL the only serve")
			startProc(0)
			time.Sleep(2 * time.Second)
			startProc(1)
		},
		func() {
			require.NoError(t, pg.Docker().Stop(ctx, nil))
			note("Postgres stopped and started")
			time.Sleep(2 * time.Second)
			require.NoError(t, pg.Docker().Start(ctx))
			px.target.Store(endpoint(t))
		},
		func() {
			require.NoError(t, exec.Command("docker", "pause", pg.Docker().GetContainerID()).Run())
			note("Postgres paused past the HTTP timeout")
			time.Sleep(1500 * time.Millisecond)
			if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addrs[0] + "/readyz"); err == nil {
				readyzDown = readyzDown || resp.StatusCode == http.StatusServiceUnavailable
				resp.Body.Close()
			}
			time.Sleep(1500 * time.Millisecond)
			require.NoError(t, exec.Command("docker", "unpause", pg.Docker().GetContainerID()).Run())
		},
	}
	for round := 0; ; round++ {
		select {
		case <-published:
		case <-time.After(2 * time.Second):
			inject[round%len(inject)]()
			continue
		}
		break
	}
	for i := range procs {
		if procs[i] == nil {
			startProc(i)
		}
	}

	// Every event the database holds, to A and B, at least once.
	var eventIDs []string
	rows, err := pool.Query(ctx, "SELECT id::text FROM hookrelay.events WHERE type = 'User.Created'")
	require.NoError(t, err)
	eventIDs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(eventIDs), events)

	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, id := range eventIDs {
			for _, hook := range []string{hookA.ID, hookB.ID} {
				if len(seen[pair{id, hook}]) == 0 {
					n++
				}
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Minute)
	for missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	lost := missing()
	if lost > 0 {
		logText, _ := os.ReadFile(logPath)
		t.Logf("serve log tail:\n%s", logText[max(0, len(logText)-4000):])
	}

	mu.Lock()
	// Each receipt after the first is counted against the last fault
	// injected before it, and its hook: what made it.
	delivered, duplicates := 0, 0
	causes := map[string]int{}
	for p, times := range seen {
		if p.hook != hookA.ID && p.hook != hookB.ID {
			continue
		}
		delivered++
		duplicates += len(times) - 1
		for _, at := range times[1:] {
			cause := "before any fault"
			for _, in := range injections {
				if in.at.Before(at) {
					cause = in.kind
				}
			}
			hook := "A"
			if p.hook == hookB.ID {
				hook = "B"
			}
			causes[hook+", after "+cause]++
		}
	}
	mu.Unlock()
	faults["receiver faults (500, hang, reset, 429, slow, huge)"] = int(receiverFaults.Load())
	var total int
	for _, n := range faults {
		total += n
	}
	logText, _ := os.ReadFile(logPath)
	fmt.Printf("faults: duplicates by hook and the fault before them: %v\n", causes)
	fmt.Printf("faults: %d events, %d deliveries expected, %d delivered, %d lost, %d duplicates, %d faults injected %v, %d publish retries, %d rescues of stranded jobs, %d reconciler runs that found deliveries without a job, wall %s\n",
		len(eventIDs), 2*len(eventIDs), delivered, lost, duplicates, total, faults, publishErrors.Load(),
		strings.Count(string(logText), "rescued jobs of a dead process"), strings.Count(string(logText), "pending deliveries had no job"),
		time.Since(start).Round(time.Second))

	require.Zero(t, lost, "no (event, hook) pair is lost")
	gotC, err := store.GetHook(ctx, hookC.ID)
	require.NoError(t, err)
	require.False(t, gotC.Enabled, "410 disabled hook C")
	require.True(t, readyzDown, "/readyz reported the outage")
	// A request can arrive before its outcome is recorded (a fault may cut
	// the recording, and the delivery is sent again): wait for the records.
	var wrong int
	require.Eventually(t, func() bool {
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE hook_id = ANY($1) AND status <> 'succeeded'", []string{hookA.ID, hookB.ID}).Scan(&wrong))
		return wrong == 0
	}, 2*time.Minute, time.Second, "every delivery of A and B ends succeeded")
}

func buildBinary(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "hookrelay")
	out, err := exec.Command("go", "build", "-o", path, "github.com/hookrelay/hookrelay/cmd/hookrelay").CombinedOutput()
	require.NoError(t, err, string(out))
	return path
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
