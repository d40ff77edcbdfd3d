package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// serveProcess runs `hookrelay serve` as a child process.
type serveProcess struct {
	t       *testing.T
	url     string
	logPath string
	cmd     *exec.Cmd
}

func startServe(t *testing.T, databaseURL, logPath string) *serveProcess {
	t.Helper()
	p := &serveProcess{t: t, url: databaseURL, logPath: logPath}
	p.start()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *serveProcess) start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(p.t, err)
	defer log.Close()
	cmd := exec.Command(hookrelayBinary(p.t), "serve")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+p.url,
		"HOOKRELAY_ADDR=127.0.0.1:0",
		"HOOKRELAY_ADMIN_TOKEN=crash-test-token",
		"HOOKRELAY_ALLOW_CIDRS=127.0.0.1",
		"HOOKRELAY_RETRY_SCHEDULE=100ms,200ms,500ms,1s,1s,1s,1s,1s,1s,1s",
		"HOOKRELAY_TIMEOUT=2s",
		"HOOKRELAY_RESCUE_AFTER=1s",
	)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(p.t, cmd.Start())
	p.cmd = cmd
}

func (p *serveProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// TestCrashSafety SIGKILLs the pipeline again and again while events flow and
// checks that every (event, hook) pair is delivered at least once.
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

	logPath := filepath.Join(t.TempDir(), "serve.log")
	proc := startServe(t, databaseURL, logPath)

	const events = 5000
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
			time.Sleep(5 * time.Millisecond)
		}
	}()

	kills := 0
	for done := false; !done; {
		select {
		case <-published:
			done = true
		case <-time.After(time.Duration(300+rand.IntN(900)) * time.Millisecond):
		}
		proc.kill()
		kills++
		proc.start()
	}
	proc.kill() // once more after the last event, then a final run
	kills++
	proc.start()

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
		if len(seen) == 2*events || time.Now().After(deadline) {
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
		logText, _ := os.ReadFile(logPath)
		t.Logf("serve log tail:\n%s", tail(string(logText), 3000))
	}
	require.Len(t, eventIDs, events)
	require.Zero(t, missing, "every (event, hook) pair is delivered at least once")
	require.Len(t, seen, 2*events, "no delivery for an unknown pair")
	fmt.Printf("crash safety: %d events, %d deliveries expected, %d received, %d duplicates, %d SIGKILLs\n",
		events, 2*events, requests, requests-len(seen), kills)

	var notSucceeded int
	require.Eventually(t, func() bool {
		return bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status <> 'succeeded'").Scan(&notSucceeded) == nil && notSucceeded == 0
	}, time.Minute, 100*time.Millisecond)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
