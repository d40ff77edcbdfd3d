// Package demo runs hookrelay end to end on one machine: a throwaway
// Postgres, the workers and HTTP server, a receiver that verifies signatures,
// and a small identity workload.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/tempdb"
	"github.com/hookrelay/hookrelay/examples/identity"
	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
	"github.com/hookrelay/hookrelay/server"
)

// Config configures a demo run.
type Config struct {
	// DatabaseURL, when set, is used instead of a throwaway cluster.
	DatabaseURL string
	// Schema of hookrelay's tables. Defaults to outbox.SchemaDefault.
	Schema string
	// Addr is where serve listens; a free port is taken if it is busy.
	Addr string
	// Events stops the workload after this many events and the demo once
	// they are all delivered; zero runs until ctx ends.
	Events int
	// Rate is the workload's actions per second. Defaults to 20.
	Rate int
	// Out receives the banner and progress.
	Out io.Writer
	// Logger receives the service's warnings and errors.
	Logger *slog.Logger
}

// retrySchedule is short, so the demo's retries resolve while you watch.
var retrySchedule = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} //nolint:gochecknoglobals

// Run runs the demo until ctx ends or, with Config.Events, until every
// event is delivered; it then removes what it started.
func Run(ctx context.Context, config *Config) error {
	databaseURL := config.DatabaseURL
	if databaseURL == "" {
		db, err := tempdb.Start(ctx, nil)
		if err != nil {
			return err
		}
		defer db.Stop()
		databaseURL = db.URL
		fmt.Fprintf(config.Out, "Postgres   %s (throwaway, in %s, removed on exit)\n", db.URL, db.Dir())
	}

	poolConfig, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("invalid database URL: %w", err)
	}
	poolConfig.MaxConns = 25
	pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer pool.Close()
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: config.Schema})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}

	endpoint := &flakyEndpoint{}
	rec, err := receiver.Start(endpoint.handle)
	if err != nil {
		return err
	}
	defer rec.Close()
	if err := registerHooks(ctx, store, rec); err != nil {
		return err
	}

	listener, err := net.Listen("tcp", config.Addr)
	if err != nil {
		if listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
	}
	token := newToken()
	base := "http://" + listener.Addr().String()
	fmt.Fprintf(config.Out, "Console    %s/console/  (user: admin, password: %s)\n", base, token)
	fmt.Fprintf(config.Out, "River UI   %s/riverui/  (the same login)\n", base)
	fmt.Fprintf(config.Out, "Admin API  curl -H 'Authorization: Bearer %s' %s/api/deliveries\n", token, base)
	fmt.Fprintf(config.Out, "Receiver   %s (verifies every signature; fails some first attempts on purpose)\n", rec.URL("/"))
	fmt.Fprintln(config.Out, "Ctrl-C to stop.")

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveDone := make(chan error, 1)
	go func() {
		serveDone <- server.Run(runCtx, &jobs.Config{
			Store:         store,
			RetrySchedule: retrySchedule,
			Timeout:       5 * time.Second,
			AllowCIDRs:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			Logger:        config.Logger,
		}, &server.Config{AdminToken: token, Logger: config.Logger}, listener)
	}()

	identityStore, err := identity.New(ctx, pool, store)
	if err != nil {
		return err
	}
	workErr := drive(runCtx, config, &workload{store: identityStore}, store, rec, endpoint)
	cancel()
	serveErr := <-serveDone
	if errors.Is(workErr, context.Canceled) {
		workErr = nil
	}
	return errors.Join(workErr, serveErr)
}

func registerHooks(ctx context.Context, store *outbox.Store, rec *receiver.Receiver) error {
	for _, params := range []*outbox.HookParams{
		{Name: "crm", URL: rec.URL("/crm"), Events: []string{"User.*", "Organization.*"}},
		{Name: "audit-log", URL: rec.URL("/audit"), Events: []string{"*"}},
		{Name: "security", URL: rec.URL("/security"), Events: []string{"PostSignIn", "PostRegister", "Role.Scopes.Updated"}},
	} {
		hook, err := store.CreateHook(ctx, params)
		if err != nil {
			return err
		}
		rec.AddHook(hook)
	}
	return nil
}

// drive runs the workload and prints progress until ctx ends or, with
// Config.Events, until the events are published and every delivery is final.
func drive(ctx context.Context, config *Config, work *workload, store *outbox.Store, rec *receiver.Receiver, endpoint *flakyEndpoint) error {
	rate := config.Rate
	if rate <= 0 {
		rate = 20
	}
	act := time.NewTicker(time.Second / time.Duration(rate))
	defer act.Stop()
	report := time.NewTicker(progressInterval(config.Out))
	defer report.Stop()

	published := 0
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(config.Out)
			return ctx.Err()
		case <-act.C:
			if config.Events > 0 && published >= config.Events {
				continue
			}
			n, err := work.step(ctx)
			if err != nil {
				return err
			}
			published += n
		case <-report.C:
			counts, err := store.CountDeliveries(ctx)
			if err != nil {
				return err
			}
			printProgress(config.Out, published, counts, rec, endpoint)
			if config.Events > 0 && published >= config.Events && counts.Pending+counts.Retrying == 0 {
				if waiting, err := store.HasUnclaimedEvents(ctx); err != nil || !waiting {
					fmt.Fprintln(config.Out)
					return err
				}
			}
		}
	}
}

func printProgress(out io.Writer, published int, c *outbox.DeliveryCounts, rec *receiver.Receiver, endpoint *flakyEndpoint) {
	line := fmt.Sprintf("published %d  delivered %d  retrying %d  failed %d  (receiver: %d requests, %d failed on purpose, %d bad signatures)",
		published, c.Succeeded, c.Retrying, c.Failed, endpoint.received.Load()+rec.BadSignatures.Load(), endpoint.failedOnPurpose.Load(), rec.BadSignatures.Load())
	if isTerminal(out) {
		fmt.Fprint(out, "\r\033[K"+line)
		return
	}
	fmt.Fprintln(out, line)
}

func progressInterval(out io.Writer) time.Duration {
	if isTerminal(out) {
		return 250 * time.Millisecond
	}
	return time.Second
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
