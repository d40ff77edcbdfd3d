package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/bench"
	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/tempdb"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "receiver" {
		return runBenchReceiver(ctx, args[1:])
	}
	fs, o := newFlagSet("bench")
	events := fs.Int("events", 20000, "events of the throughput phase")
	hooks := fs.Int("hooks", 2, "hooks receiving every event")
	writers := fs.Int("writers", 16, "concurrent publishers of the throughput phase")
	rate := fs.Int("rate", 1000, "offered load of the latency phases, deliveries/s")
	duration := fs.Duration("duration", 10*time.Second, "length of each latency and publish-overhead phase")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file, and one of serve during the drain to FILE.serve")
	drainOnly := fs.Bool("drain-only", false, "run River's baseline and the drain phases only")
	statements := fs.Bool("pg-statements", false, "load pg_stat_statements in the throwaway Postgres and report the drain's top statements (--json)")
	soak := fs.Duration("soak", 0, "instead of the phases, offer --rate for this long with --soak-retention, sampling the tables")
	soakRetention := fs.Duration("soak-retention", 2*time.Minute, "the retention of --soak")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *events <= 0 || *hooks <= 0 || *writers <= 0 || *rate <= 0 || *duration <= 0 {
		return usagef("bench: --events, --hooks, --writers, --rate and --duration must be positive")
	}
	var serveProfile string
	if *cpuProfile != "" {
		serveProfile = *cpuProfile + ".serve"
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	databaseURL := o.databaseURL
	if databaseURL == "" {
		db, err := tempdb.Start(ctx, &tempdb.Options{Durable: true, Statements: *statements})
		if err != nil {
			return err
		}
		defer db.Stop()
		databaseURL = db.URL
	}
	if *soak > 0 {
		return runSoak(ctx, &bench.Config{DatabaseURL: databaseURL, Hooks: *hooks, Rate: *rate, Logger: benchLogger()},
			*soak, *soakRetention, *asJSON, stdout)
	}
	res, err := bench.Run(ctx, &bench.Config{
		DatabaseURL:  databaseURL,
		Events:       *events,
		Hooks:        *hooks,
		Writers:      *writers,
		Rate:         *rate,
		Duration:     *duration,
		DrainOnly:    *drainOnly,
		ServeProfile: serveProfile,
		Logger:       benchLogger(),
	}, os.Stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"river_noop_jobs_per_s", fmt.Sprintf("%.0f  (CPU per job: %.0f µs its client, %.0f µs Postgres)", res.RiverNoopJobsPerS, res.RiverProcessCPUPerJobUS, res.RiverPostgresCPUPerJobUS)},
	}
	if !*drainOnly {
		rows = append(rows, inProcessRows(res)...)
	}
	for _, d := range []struct {
		name  string
		drain *bench.DrainResult
	}{{"drain through serve", res.Drain}, {"drain, HTTPS receiver", res.DrainHTTPS}} {
		rows = append(rows,
			[2]string{d.name, fmt.Sprintf("%.0f deliveries/s, ratio %.2f  (SQL-published backlog; serve and receiver as processes)", d.drain.DeliveriesPerS, d.drain.Ratio)},
			[2]string{"  cpu per delivery", fmt.Sprintf("serve %.0f µs, Postgres %.0f µs, receiver %.0f µs", d.drain.ServeCPUPerDeliveryUS, d.drain.PostgresCPUPerDeliveryUS, d.drain.ReceiverCPUPerDeliveryUS)},
			[2]string{"  connections", fmt.Sprintf("%d (%.1f per 1,000 deliveries), %d TLS handshakes", d.drain.Connections, d.drain.ConnectionsPer1000, d.drain.TLSHandshakes)})
	}
	rows = append(rows,
		[2]string{"wal per delivery", fmt.Sprintf("%.0f bytes, %.2f× River's %.0f per no-op job", res.Drain.WALBytesPerDelivery, res.WALRatio, res.RiverWALBytesPerJob)},
		[2]string{"database growth per event", fmt.Sprintf("%.0f bytes (pg_database_size, before retention)", res.Drain.DatabaseBytesPerEvent)},
		[2]string{"peak_rss", fmt.Sprintf("%.0f MiB", float64(res.PeakRSSBytes)/(1<<20))},
		[2]string{"wall", fmt.Sprintf("%.0f s", res.WallSeconds)},
	)
	for _, row := range rows {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	return w.Flush()
}

func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// soakSamples is how many times a soak samples the tables.
const soakSamples = 20

// runSoak is `hookrelay bench --soak D`: a steady load, the tables sampled.
func runSoak(ctx context.Context, config *bench.Config, duration, retention time.Duration, asJSON bool, stdout io.Writer) error {
	res, err := bench.Soak(ctx, config, duration, retention, soakSamples, os.Stderr)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "soak: %d deliveries/s to %d hooks for %s, retention %s: latency p50/p95/p99 %.1f / %.1f / %.1f ms, %.2f River jobs and %.0f µs of Postgres CPU per delivery\n",
		res.DeliveriesPerS, res.Hooks, duration, retention, res.Latency.P50, res.Latency.P95, res.Latency.P99, res.RiverJobsPerDelivery, res.PostgresCPUPerDeliveryUS)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "seconds\tevents\tdeliveries\tattempts\triver jobs\tMiB\t")
	for _, s := range res.Samples {
		fmt.Fprintf(w, "%.0f\t%d\t%d\t%d\t%d\t%.1f\t\n", s.Seconds, s.Events, s.Deliveries, s.Attempts, s.RiverJobs, float64(s.Bytes)/(1<<20))
	}
	return w.Flush()
}

// inProcessRows are the table's rows of the phases with the service in the
// bench's process.
func inProcessRows(res *bench.Result) [][2]string {
	return [][2]string{
		{"deliveries_per_s", fmt.Sprintf("%.0f  (%d events × %d hooks, %d writers)", res.DeliveriesPerS, res.Events, res.Hooks, res.Writers)},
		{"ratio", fmt.Sprintf("%.2f", res.Ratio)},
		{"latency_ms go  p50/p95/p99", fmt.Sprintf("%.1f / %.1f / %.1f  at %d deliveries/s", res.Latency.Go.P50, res.Latency.Go.P95, res.Latency.Go.P99, res.OfferedDeliveriesPerS)},
		{"latency_ms sql p50/p95/p99", fmt.Sprintf("%.1f / %.1f / %.1f", res.Latency.SQL.P50, res.Latency.SQL.P95, res.Latency.SQL.P99)},
		{"latency_ms beside a hanging hook", fmt.Sprintf("%.1f / %.1f / %.1f  (p99 %.2f× the Go phase's)", res.Latency.BesideHangingHook.P50, res.Latency.BesideHangingHook.P95, res.Latency.BesideHangingHook.P99, res.Latency.BesideHangingHookRatio)},
		{"latency_ms beside a flaky hook", fmt.Sprintf("%.1f / %.1f / %.1f  (p99 %.2f× the Go phase's)", res.Latency.BesideFlakyHook.P50, res.Latency.BesideFlakyHook.P95, res.Latency.BesideFlakyHook.P99, res.Latency.BesideFlakyHookRatio)},
		{"latency_ms of the flaky hook", fmt.Sprintf("answered at once %.1f / %.1f / %.1f (n=%d); held once p50 %.0f, max %.0f (n=%d)", res.Latency.FlakyPrompt.P50, res.Latency.FlakyPrompt.P95, res.Latency.FlakyPrompt.P99, res.Latency.FlakyPrompt.N, res.Latency.FlakyHeld.P50, res.Latency.FlakyHeld.P99, res.Latency.FlakyHeld.N)},
		{"rate limit", fmt.Sprintf("%d events to a hook at %d/s drained at %.1f/s (%.3f× the limit), busiest second %d; unlimited hooks done in %.1f s, the limited one in %.1f s",
			res.RateLimit.Events, res.RateLimit.LimitPerS, res.RateLimit.DrainedPerS, res.RateLimit.DrainedPerS/float64(res.RateLimit.LimitPerS), res.RateLimit.BusiestSecond,
			res.RateLimit.UnlimitedSeconds, res.RateLimit.LimitedSeconds)},
		{"latency_ms below the rate limit", fmt.Sprintf("%.1f / %.1f / %.1f  (p99 %.2f× the Go phase's; every hook limited to 10× its load)",
			res.RateLimit.BelowLimit.P50, res.RateLimit.BelowLimit.P95, res.RateLimit.BelowLimit.P99, res.RateLimit.BelowLimitRatio)},
		{"ordering by subject", fmt.Sprintf("%d events of %d subjects: the ordered hook in %.2f s, the hooks in no order in %.2f s (throughput %.2f× theirs)",
			res.Ordering.Events, res.Ordering.Subjects, res.Ordering.OrderedSeconds, res.Ordering.UnorderedSeconds, res.Ordering.Ratio)},
		{"ordering hand-off_ms", fmt.Sprintf("%.1f / %.1f / %.1f  (p50/p95/p99 of %d, an event's arrival to its subject's next)",
			res.Ordering.HandOff.P50, res.Ordering.HandOff.P95, res.Ordering.HandOff.P99, res.Ordering.HandOff.N)},
		{"latency_ms first event after quiet", fmt.Sprintf("%.1f / %.1f / %.1f  (p50/p95/max of %d)", res.Latency.Wake.P50, res.Latency.Wake.P95, res.Latency.Wake.P99, res.Latency.Wake.N)},
		{"publish_overhead", fmt.Sprintf("%.2f  (%.0f tx/s plain insert, %.0f tx/s PublishTx)", res.PublishOverhead, res.PlainInsertTxPerS, res.PublishTxPerS)},
		{"fan-out per delivery, 100 hooks", fmt.Sprintf("%.1f µs, %.1f µs with a filter each (%.2f×)", res.FanOutUS, res.FanOutFilteredUS, res.FanOutFilteredRatio)},
		{"postgres per event", fmt.Sprintf("%.0f bytes, %.1f rows", res.BytesPerEvent, res.RowsPerEvent)},
		{"rows per event after retention", fmt.Sprintf("%.1f", res.RowsPerEventRetained)},
	}
}

// runBenchReceiver is `hookrelay bench receiver --addr A`: the drain phase's
// receiver, run by the bench as a process of its own.
func runBenchReceiver(ctx context.Context, args []string) error {
	fs, o := newFlagSet("bench receiver")
	certFile := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM)")
	keyFile := fs.String("tls-key", "", "the certificate's key (PEM)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	var tlsFiles *bench.ReceiverTLS
	if *certFile != "" {
		tlsFiles = &bench.ReceiverTLS{CertFile: *certFile, KeyFile: *keyFile}
	}
	store, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	return bench.Receive(ctx, store.Pool(), store.Schema(), o.addr, tlsFiles)
}
