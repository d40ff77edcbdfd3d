// Package bench measures hookrelay against River itself on the same
// database: River's no-op job rate is the ceiling, since every delivery needs
// at least one River job plus hookrelay's own rows.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// Config configures a run.
type Config struct {
	// DatabaseURL is the database to measure in; its schemas
	// hookrelay_bench and hookrelay_bench_river are dropped and recreated.
	DatabaseURL string
	// Events is how many events the throughput phase publishes.
	Events int
	// Hooks is how many hooks receive every event.
	Hooks int
	// Writers publish concurrently in the throughput phase.
	Writers int
	// Rate is the offered load of the latency phases, in deliveries/s.
	Rate int
	// Duration is the length of each latency and publish-overhead phase.
	Duration time.Duration
	// DrainOnly runs River's baseline and the drain phases only.
	DrainOnly bool
	// ServeProfile, when set, is where a CPU profile of serve during the
	// HTTP drain is written.
	ServeProfile string
	// Retention is the service's (see Soak); zero leaves its default.
	Retention time.Duration
	// Logger receives the service's warnings.
	Logger *slog.Logger
}

// Result is one run's figures.
type Result struct {
	RiverNoopJobsPerS float64 `json:"river_noop_jobs_per_s"`
	// RiverWALBytesPerJob is the WAL of inserting and working one no-op job.
	RiverWALBytesPerJob float64 `json:"river_wal_bytes_per_job"`
	// The CPU a no-op job costs its River client and Postgres, in µs.
	RiverProcessCPUPerJobUS  float64 `json:"river_process_cpu_us_per_job"`
	RiverPostgresCPUPerJobUS float64 `json:"river_postgres_cpu_us_per_job"`
	DeliveriesPerS           float64 `json:"deliveries_per_s"`
	Ratio                    float64 `json:"ratio"`
	Latency                  struct {
		Go  Percentiles `json:"go"`
		SQL Percentiles `json:"sql"`
		// BesideHangingHook is the Go phase again while a further hook's
		// receiver holds every request; its p99 over Go's is the ratio.
		BesideHangingHook      Percentiles `json:"beside_hanging_hook"`
		BesideHangingHookRatio float64     `json:"beside_hanging_hook_ratio"`
		// BesideFlakyHook is the Go phase again while a further hook's
		// receiver holds the first attempt of 5 % of its deliveries past
		// the request timeout; FlakyPrompt is that hook's deliveries
		// answered at once, FlakyHeld its held ones (P99 is their worst),
		// from commit to answer.
		BesideFlakyHook      Percentiles `json:"beside_flaky_hook"`
		BesideFlakyHookRatio float64     `json:"beside_flaky_hook_ratio"`
		FlakyPrompt          Percentiles `json:"flaky_hook_prompt"`
		FlakyHeld            Percentiles `json:"flaky_hook_held"`
		// Wake is the first event after a quiet spell, one per spell.
		Wake Percentiles `json:"wake"`
	} `json:"latency_ms"`
	// Drain is the deployed shape: serve and the receiver as processes;
	// DrainHTTPS the same with the receiver behind TLS.
	Drain      *DrainResult `json:"drain"`
	DrainHTTPS *DrainResult `json:"drain_https"`
	// WALRatio is the drain's WAL per delivery over River's per no-op job.
	WALRatio              float64 `json:"wal_ratio"`
	OfferedDeliveriesPerS int     `json:"offered_deliveries_per_s"`
	PublishOverhead       float64 `json:"publish_overhead"`
	PlainInsertTxPerS     float64 `json:"plain_insert_tx_per_s"`
	PublishTxPerS         float64 `json:"publish_tx_per_s"`
	// RateLimit is the rate-limit phase.
	RateLimit *RateResult `json:"rate_limit"`
	// Ordering is the ordering phase.
	Ordering *OrderResult `json:"ordering"`
	// FanOutUS and FanOutFilteredUS are the fan-out's time per delivery
	// made to 100 hooks, without filters and with one each.
	FanOutUS             float64 `json:"fan_out_us_per_delivery"`
	FanOutFilteredUS     float64 `json:"fan_out_filtered_us_per_delivery"`
	FanOutFilteredRatio  float64 `json:"fan_out_filtered_ratio"`
	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	BytesPerEvent        float64 `json:"postgres_bytes_per_event"`
	RowsPerEvent         float64 `json:"postgres_rows_per_event"`
	RowsPerEventRetained float64 `json:"postgres_rows_per_event_after_retention"`
	Events               int     `json:"events"`
	Hooks                int     `json:"hooks"`
	Writers              int     `json:"writers"`
	WallSeconds          float64 `json:"wall_seconds"`
}

// Percentiles are latencies in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	N   int     `json:"n"`
}

const (
	benchSchema      = "hookrelay_bench"
	benchRiverSchema = "hookrelay_bench_river"
)

// rateEventsMax bounds the rate-limit phase's backlog: 20 s at 50/s.
const rateEventsMax = 1000

// wakeSamples is how many quiet spells the wake-up phase measures.
const wakeSamples = 10

// Run runs every phase in order and returns the figures.
func Run(ctx context.Context, config *Config, progress io.Writer) (*Result, error) {
	start := time.Now()
	pool, err := newPool(ctx, config.DatabaseURL, 25)
	if err != nil {
		return nil, err
	}
	defer pool.Close()

	res := &Result{Events: config.Events, Hooks: config.Hooks, Writers: config.Writers, OfferedDeliveriesPerS: config.Rate}
	step := func(name string) { fmt.Fprintf(progress, "bench: %s…\n", name) }

	step("River no-op burn-down (baseline)")
	river, err := riverNoop(ctx, pool, config.Events*config.Hooks)
	if err != nil {
		return nil, fmt.Errorf("river baseline: %w", err)
	}
	res.RiverNoopJobsPerS, res.RiverWALBytesPerJob = river.perS, river.walPerJob
	res.RiverProcessCPUPerJobUS, res.RiverPostgresCPUPerJobUS = river.processCPUUS, river.postgresCPUUS

	if !config.DrainOnly {
		if err := runInProcess(ctx, pool, config, res, step); err != nil {
			return nil, err
		}
	}

	step("draining a backlog published through SQL, with serve and the receiver as processes")
	drainOpts := &drainOptions{events: config.Events, hooks: config.Hooks, writers: config.Writers, serveProfile: config.ServeProfile}
	if res.Drain, err = drain(ctx, pool, config.DatabaseURL, drainOpts); err != nil {
		return nil, fmt.Errorf("drain: %w", err)
	}
	res.Drain.Ratio = res.Drain.DeliveriesPerS / res.RiverNoopJobsPerS
	res.WALRatio = res.Drain.WALBytesPerDelivery / res.RiverWALBytesPerJob

	step("the same drain to an HTTPS receiver (HTTP/1.1: a TLS handshake per connection)")
	drainOpts.https, drainOpts.serveProfile = true, ""
	if res.DrainHTTPS, err = drain(ctx, pool, config.DatabaseURL, drainOpts); err != nil {
		return nil, fmt.Errorf("drain over HTTPS: %w", err)
	}
	res.DrainHTTPS.Ratio = res.DrainHTTPS.DeliveriesPerS / res.RiverNoopJobsPerS

	res.PeakRSSBytes = peakRSS()
	res.WallSeconds = time.Since(start).Seconds()
	return res, nil
}

// runInProcess runs the phases with the service in this process: end-to-end
// throughput, the latencies, retention and the publish overhead.
func runInProcess(ctx context.Context, pool *pgxpool.Pool, config *Config, res *Result, step func(string)) error {
	step("end-to-end signed deliveries")
	env, err := newEnvironment(ctx, pool, config)
	if err != nil {
		return err
	}
	defer env.close()
	if res.DeliveriesPerS, err = env.throughput(ctx, config.Events, config.Writers); err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	res.Ratio = res.DeliveriesPerS / res.RiverNoopJobsPerS
	if res.BytesPerEvent, res.RowsPerEvent, err = env.footprint(ctx, config.Events); err != nil {
		return err
	}

	step("latency at fixed load, Go publishers")
	if res.Latency.Go, _, err = env.latency(ctx, config.Rate, config.Duration, false); err != nil {
		return fmt.Errorf("latency (Go): %w", err)
	}
	step("latency at fixed load, SQL publishers")
	if res.Latency.SQL, _, err = env.latency(ctx, config.Rate, config.Duration, true); err != nil {
		return fmt.Errorf("latency (SQL): %w", err)
	}

	step("latency beside a hanging hook, Go publishers")
	removeHanging, err := env.hangingHook(ctx)
	if err != nil {
		return err
	}
	res.Latency.BesideHangingHook, _, err = env.latency(ctx, config.Rate, config.Duration, false)
	removeHanging()
	if err != nil {
		return fmt.Errorf("latency beside a hanging hook: %w", err)
	}
	res.Latency.BesideHangingHookRatio = res.Latency.BesideHangingHook.P99 / res.Latency.Go.P99

	step("deliveries beside a flaky neighbour, Go publishers")
	flaky, removeFlaky, err := env.flakyHook(ctx)
	if err != nil {
		return err
	}
	var committed map[string]time.Time
	res.Latency.BesideFlakyHook, committed, err = env.latency(ctx, config.Rate, config.Duration, false)
	if err == nil {
		res.Latency.FlakyPrompt, res.Latency.FlakyHeld, err = flaky.outcome(ctx, committed)
	}
	removeFlaky()
	if err != nil {
		return fmt.Errorf("latency beside a flaky hook: %w", err)
	}
	res.Latency.BesideFlakyHookRatio = res.Latency.BesideFlakyHook.P99 / res.Latency.Go.P99
	step(fmt.Sprintf("a backlog drained to a hook limited to %d/s; latency with every hook below its limit", rateLimitPerS))
	if res.RateLimit, err = env.rateLimited(ctx, min(config.Events, rateEventsMax), config.Rate, config.Duration); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	res.RateLimit.BelowLimitRatio = res.RateLimit.BelowLimit.P99 / res.Latency.Go.P99
	step("a backlog drained to a hook ordered by subject")
	if res.Ordering, err = env.ordered(ctx, config.Events); err != nil {
		return fmt.Errorf("ordering: %w", err)
	}
	step("latency of the first event after quiet spells")
	if res.Latency.Wake, err = env.wakeLatency(ctx, wakeSamples); err != nil {
		return err
	}

	step("retention")
	if res.RowsPerEventRetained, err = env.afterRetention(ctx); err != nil {
		return err
	}
	env.close()

	step("fan-out to 100 hooks, without filters and with one each")
	if res.FanOutUS, res.FanOutFilteredUS, err = fanOutFilters(ctx, pool); err != nil {
		return fmt.Errorf("fan-out with filters: %w", err)
	}
	res.FanOutFilteredRatio = res.FanOutFilteredUS / res.FanOutUS

	step("publish overhead (32 writers)")
	if res.PlainInsertTxPerS, res.PublishTxPerS, err = publishOverhead(ctx, pool, env.store, config.Duration); err != nil {
		return fmt.Errorf("publish overhead: %w", err)
	}
	res.PublishOverhead = res.PlainInsertTxPerS / res.PublishTxPerS

	return nil
}

// environment is a migrated schema with a running service, its hooks and
// an in-process receiver that verifies every signature.
type environment struct {
	pool    *pgxpool.Pool
	store   *outbox.Store
	service *jobs.Service
	rec     *receiver.Receiver
	counter *counter
	hooks   int
	closed  bool
}

func newEnvironment(ctx context.Context, pool *pgxpool.Pool, config *Config) (*environment, error) {
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+benchSchema+" CASCADE"); err != nil {
		return nil, err
	}
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: benchSchema})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	counter := &counter{}
	rec, err := receiver.Start(counter.handle)
	if err != nil {
		return nil, err
	}
	for i := range config.Hooks {
		hook, err := store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL("/" + strconv.Itoa(i)), Events: []string{"*"}})
		if err != nil {
			rec.Close()
			return nil, err
		}
		rec.AddHook(hook)
	}
	service, err := jobs.NewService(&jobs.Config{
		Store:      store,
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Retention:  config.Retention,
		Logger:     config.Logger,
	})
	if err == nil {
		err = service.Start(ctx)
	}
	if err != nil {
		rec.Close()
		return nil, err
	}
	return &environment{pool: pool, store: store, service: service, rec: rec, counter: counter, hooks: config.Hooks}, nil
}

func (e *environment) close() {
	if e.closed {
		return
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = e.service.Stop(ctx)
	e.rec.Close()
}

// peakRSS reads the process's high-water resident set size.
func peakRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func newPool(ctx context.Context, url string, size int32) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("bench: no database")
	}
	config, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	config.MaxConns = size
	return pgxpool.NewWithConfig(ctx, config)
}

// waitUntil polls cond every few milliseconds until it holds or timeout.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

var discardLogger = slog.New(slog.DiscardHandler) //nolint:gochecknoglobals
