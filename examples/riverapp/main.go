// Command riverapp is an application that runs River already and adds
// hookrelay to its own River client: its River tables stay in public, where
// it migrates them; hookrelay's tables are in the hookrelay schema. A signup
// writes the user, publishes User.Created and queues the application's own
// welcome job in one transaction; River's UI and hookrelay's admin API are
// served from the same client.
//
//	DATABASE_URL=… HOOKRELAY_ADMIN_TOKEN=… go run ./examples/riverapp
//	curl -X POST 'localhost:8090/signup?username=ann'
//
// The integration tests run it and kill it.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
	"github.com/hookrelay/hookrelay/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "riverapp:", err)
		os.Exit(1)
	}
}

// WelcomeArgs is the application's own job: a welcome email to a new user.
type WelcomeArgs struct {
	UserID string `json:"user_id"`
}

func (WelcomeArgs) Kind() string { return "app_welcome_email" }

func (WelcomeArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "app"} }

type welcomeWorker struct {
	river.WorkerDefaults[WelcomeArgs]
	pool *pgxpool.Pool
}

func (w *welcomeWorker) Work(ctx context.Context, job *river.Job[WelcomeArgs]) error {
	_, err := w.pool.Exec(ctx, "INSERT INTO app_emails (user_id) VALUES ($1)", job.Args.UserID)
	return err
}

// TickArgs is the application's periodic job.
type TickArgs struct{}

func (TickArgs) Kind() string { return "app_tick" }

func (TickArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "app"} }

type tickWorker struct {
	river.WorkerDefaults[TickArgs]
	pool *pgxpool.Pool
}

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[TickArgs]) error {
	_, err := w.pool.Exec(ctx, "INSERT INTO app_ticks DEFAULT VALUES")
	return err
}

func run(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate(ctx, pool); err != nil {
		return err
	}
	allow, err := jobs.ParseCIDRs(os.Getenv("HOOKRELAY_ALLOW_CIDRS"))
	if err != nil {
		return err
	}

	// hookrelay's tables in its schema; River's are the application's.
	store, err := outbox.NewStore(pool, &outbox.Config{RiverSchema: "public"})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil { // skips River's migrations
		return err
	}
	relay, err := jobs.New(&jobs.Config{Store: store, AllowCIDRs: allow})
	if err != nil {
		return err
	}

	// The application's River client, with hookrelay added.
	workers := river.NewWorkers()
	river.AddWorker(workers, &welcomeWorker{pool: pool})
	river.AddWorker(workers, &tickWorker{pool: pool})
	if err := relay.AddWorkers(workers); err != nil {
		return err
	}
	config := &river.Config{
		Queues:  map[string]river.QueueConfig{"app": {MaxWorkers: 10}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Second),
				func() (river.JobArgs, *river.InsertOpts) { return TickArgs{}, nil }, nil),
		},
		// The application's choices, for its own jobs: hookrelay's jobs keep
		// hookrelay's timeouts, retry schedule and rescue whatever these say.
		JobTimeout:           10 * time.Second,
		RescueStuckJobsAfter: 30 * time.Second,
	}
	config.Queues = relay.AddQueues(config.Queues)
	config.PeriodicJobs = append(config.PeriodicJobs, relay.PeriodicJobs()...)
	client, err := river.NewClient(riverpgxv5.New(pool), config)
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	if err := relay.Start(ctx, client); err != nil {
		return err
	}

	// hookrelay's admin API and River's UI, on the same client: the UI
	// lists the application's jobs beside hookrelay's.
	srv, err := server.New(&server.Config{Relay: relay, AdminToken: os.Getenv("HOOKRELAY_ADMIN_TOKEN")})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc("POST /signup", func(w http.ResponseWriter, r *http.Request) {
		id, err := signup(r.Context(), pool, store, client, r.URL.Query().Get("username"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintln(w, id)
	})
	listener, err := net.Listen("tcp", cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8090"))
	if err != nil {
		return err
	}
	httpServer := server.NewHTTPServer(mux, slog.Default())
	go func() { _ = httpServer.Serve(listener) }()
	slog.Info("riverapp listening", "addr", listener.Addr().String())

	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay.Stop()
	err = errors.Join(httpServer.Shutdown(shutdown), client.Stop(shutdown))
	_ = relay.Drain(shutdown) // requests that deliver jobs left in flight
	return err
}

// signup creates a user, publishes User.Created and queues the welcome
// email, all or nothing.
func signup(ctx context.Context, pool *pgxpool.Pool, store *outbox.Store, client *river.Client[pgx.Tx], username string) (string, error) {
	var id string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "INSERT INTO app_users (username) VALUES ($1) RETURNING id::text", username).Scan(&id); err != nil {
			return err
		}
		if _, err := store.PublishTx(ctx, tx, outbox.UserCreated(&outbox.User{ID: id, Username: username})); err != nil {
			return err
		}
		_, err := client.InsertTx(ctx, tx, WelcomeArgs{UserID: id}, nil)
		return err
	})
	return id, err
}

// migrate applies River's migrations in public and the application's tables,
// as the application does already.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS app_users (id bigserial PRIMARY KEY, username text NOT NULL);
		CREATE TABLE IF NOT EXISTS app_emails (user_id text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE IF NOT EXISTS app_ticks (at timestamptz NOT NULL DEFAULT now());`)
	return err
}
