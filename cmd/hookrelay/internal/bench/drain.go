package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
	"github.com/hookrelay/hookrelay/outbox"
)

// The drain phase measures the shape users deploy: events published through
// the SQL function while no worker runs, then `hookrelay serve` started as a
// process of its own with default settings, delivering to a receiver that is
// a third process and verifies every signature. It also reads the WAL and
// the database's growth that the backlog and its delivery cost.

const drainSchema = "hookrelay_bench_drain"

// DrainResult are the drain phase's figures.
type DrainResult struct {
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	// Ratio is DeliveriesPerS over River's no-op rate of the same run.
	Ratio float64 `json:"ratio"`
	// WALBytesPerDelivery covers publishing, fan-out and delivery.
	WALBytesPerDelivery float64 `json:"wal_bytes_per_delivery"`
	// DatabaseBytesPerEvent is pg_database_size's growth, before retention.
	DatabaseBytesPerEvent float64 `json:"database_bytes_per_event"`
}

// drain runs the phase with events × hooks deliveries and writers publishers.
func drain(ctx context.Context, pool *pgxpool.Pool, databaseURL string, events, hooks, writers int) (*DrainResult, error) {
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+drainSchema+" CASCADE"); err != nil {
		return nil, err
	}
	defer func() {
		_, _ = pool.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+drainSchema+" CASCADE")
	}()
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: drainSchema})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	receiverAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	for i := range hooks {
		_, err := store.CreateHook(ctx, &outbox.HookParams{URL: "http://" + receiverAddr + "/" + strconv.Itoa(i), Events: []string{"*"}})
		if err != nil {
			return nil, err
		}
	}
	env := append(os.Environ(), "DATABASE_URL="+databaseURL, "HOOKRELAY_SCHEMA="+drainSchema)
	rec, err := startChild(ctx, env, "bench", "receiver", "--addr", receiverAddr)
	if err != nil {
		return nil, err
	}
	defer rec.stop()
	counts := &childCounts{url: "http://" + receiverAddr + "/count"}
	if err := waitUntil(ctx, 30*time.Second, func() bool { _, err := counts.read(); return err == nil }); err != nil {
		return nil, fmt.Errorf("bench receiver did not start: %w", err)
	}

	walBefore, sizeBefore, err := walAndSize(ctx, pool)
	if err != nil {
		return nil, err
	}
	var next atomic.Int64
	errs := make(chan error, writers)
	for range writers {
		go func() {
			for next.Add(1) <= int64(events) {
				if _, err := store.PublishSQL(ctx, outbox.EventUserCreated, sampleData, nil, ""); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			return nil, err
		}
	}

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	serveAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	serve, err := startChild(ctx, append(env,
		"HOOKRELAY_ADMIN_TOKEN="+hex.EncodeToString(token),
		"HOOKRELAY_ADDR="+serveAddr,
		"HOOKRELAY_ALLOW_CIDRS=127.0.0.1/32",
	), "serve")
	if err != nil {
		return nil, err
	}
	defer serve.stop()
	want := int64(events * hooks)
	var got childCount
	err = waitUntil(ctx, 30*time.Minute, func() bool {
		got, err = counts.read()
		return err == nil && got.Verified >= want
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("%d of %d deliveries arrived: %w", got.Verified, want, err)
	}
	if got.Bad > 0 {
		return nil, fmt.Errorf("%d deliveries had a bad signature", got.Bad)
	}
	walAfter, sizeAfter, err := walAndSize(ctx, pool)
	if err != nil {
		return nil, err
	}
	return &DrainResult{
		DeliveriesPerS:        float64(want) / elapsed.Seconds(),
		WALBytesPerDelivery:   float64(walAfter-walBefore) / float64(want),
		DatabaseBytesPerEvent: float64(sizeAfter-sizeBefore) / float64(events),
	}, nil
}

// walAndSize reads the WAL position and the database's size.
func walAndSize(ctx context.Context, pool *pgxpool.Pool) (wal, size int64, err error) {
	err = pool.QueryRow(ctx, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, pg_database_size(current_database())").Scan(&wal, &size)
	return wal, size, err
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type child struct {
	cmd  *exec.Cmd
	done chan error
}

// startChild runs this program again with args.
func startChild(ctx context.Context, env []string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hookrelay %v: %w", args, err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	return c, nil
}

// stop ends the child with SIGTERM, and SIGKILL if it lingers.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

type childCount struct {
	Verified int64 `json:"verified"`
	Bad      int64 `json:"bad"`
}

type childCounts struct{ url string }

func (c *childCounts) read() (childCount, error) {
	var count childCount
	resp, err := http.Get(c.url) //nolint:gosec,noctx // the bench's own loopback receiver
	if err != nil {
		return count, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return count, errors.New(resp.Status)
	}
	return count, json.NewDecoder(resp.Body).Decode(&count)
}

// Receive runs the drain phase's receiver until ctx ends: it verifies every
// delivery to the schema's hooks, answers 204, and tells its counts at
// GET /count.
func Receive(ctx context.Context, pool *pgxpool.Pool, schema, addr string) error {
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: schema})
	if err != nil {
		return err
	}
	hooks, err := store.ListHooks(ctx)
	if err != nil {
		return err
	}
	var verified atomic.Int64
	rec := receiver.New(func(w http.ResponseWriter, _ *receiver.Delivery) {
		verified.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	for _, hook := range hooks {
		rec.AddHook(hook)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(childCount{Verified: verified.Load(), Bad: rec.BadSignatures.Load()})
	})
	mux.Handle("POST /", rec)
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	if err := server.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
