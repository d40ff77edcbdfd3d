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
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *events <= 0 || *hooks <= 0 || *writers <= 0 || *rate <= 0 || *duration <= 0 {
		return usagef("bench: --events, --hooks, --writers, --rate and --duration must be positive")
	}
	if *cpuProfile != "" {
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
		db, err := tempdb.Start(ctx, &tempdb.Options{Durable: true})
		if err != nil {
			return err
		}
		defer db.Stop()
		databaseURL = db.URL
	}
	res, err := bench.Run(ctx, &bench.Config{
		DatabaseURL: databaseURL,
		Events:      *events,
		Hooks:       *hooks,
		Writers:     *writers,
		Rate:        *rate,
		Duration:    *duration,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, os.Stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"river_noop_jobs_per_s", fmt.Sprintf("%.0f", res.RiverNoopJobsPerS)},
		{"deliveries_per_s", fmt.Sprintf("%.0f  (%d events × %d hooks, %d writers)", res.DeliveriesPerS, res.Events, res.Hooks, res.Writers)},
		{"ratio", fmt.Sprintf("%.2f", res.Ratio)},
		{"latency_ms go  p50/p95/p99", fmt.Sprintf("%.1f / %.1f / %.1f  at %d deliveries/s", res.Latency.Go.P50, res.Latency.Go.P95, res.Latency.Go.P99, res.OfferedDeliveriesPerS)},
		{"latency_ms sql p50/p95/p99", fmt.Sprintf("%.1f / %.1f / %.1f", res.Latency.SQL.P50, res.Latency.SQL.P95, res.Latency.SQL.P99)},
		{"latency_ms beside a hanging hook", fmt.Sprintf("%.1f / %.1f / %.1f  (p99 %.2f× the Go phase's)", res.Latency.BesideHangingHook.P50, res.Latency.BesideHangingHook.P95, res.Latency.BesideHangingHook.P99, res.Latency.BesideHangingHookRatio)},
		{"latency_ms beside a flaky hook", fmt.Sprintf("%.1f / %.1f / %.1f  (p99 %.2f× the Go phase's)", res.Latency.BesideFlakyHook.P50, res.Latency.BesideFlakyHook.P95, res.Latency.BesideFlakyHook.P99, res.Latency.BesideFlakyHookRatio)},
		{"latency_ms of the flaky hook", fmt.Sprintf("answered at once %.1f / %.1f / %.1f (n=%d); held once p50 %.0f, max %.0f (n=%d)", res.Latency.FlakyPrompt.P50, res.Latency.FlakyPrompt.P95, res.Latency.FlakyPrompt.P99, res.Latency.FlakyPrompt.N, res.Latency.FlakyHeld.P50, res.Latency.FlakyHeld.P99, res.Latency.FlakyHeld.N)},
		{"latency_ms first event after quiet", fmt.Sprintf("%.1f / %.1f / %.1f  (p50/p95/max of %d)", res.Latency.Wake.P50, res.Latency.Wake.P95, res.Latency.Wake.P99, res.Latency.Wake.N)},
		{"drain through serve", fmt.Sprintf("%.0f deliveries/s, ratio %.2f  (SQL-published backlog; serve and receiver as processes)", res.Drain.DeliveriesPerS, res.Drain.Ratio)},
		{"wal per delivery", fmt.Sprintf("%.0f bytes, %.2f× River's %.0f per no-op job", res.Drain.WALBytesPerDelivery, res.WALRatio, res.RiverWALBytesPerJob)},
		{"database growth per event", fmt.Sprintf("%.0f bytes (pg_database_size, before retention)", res.Drain.DatabaseBytesPerEvent)},
		{"publish_overhead", fmt.Sprintf("%.2f  (%.0f tx/s plain insert, %.0f tx/s PublishTx)", res.PublishOverhead, res.PlainInsertTxPerS, res.PublishTxPerS)},
		{"peak_rss", fmt.Sprintf("%.0f MiB", float64(res.PeakRSSBytes)/(1<<20))},
		{"postgres per event", fmt.Sprintf("%.0f bytes, %.1f rows", res.BytesPerEvent, res.RowsPerEvent)},
		{"rows per event after retention", fmt.Sprintf("%.1f", res.RowsPerEventRetained)},
		{"wall", fmt.Sprintf("%.0f s", res.WallSeconds)},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	return w.Flush()
}

// runBenchReceiver is `hookrelay bench receiver --addr A`: the drain phase's
// receiver, run by the bench as a process of its own.
func runBenchReceiver(ctx context.Context, args []string) error {
	fs, o := newFlagSet("bench receiver")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	store, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	return bench.Receive(ctx, store.Pool(), store.Schema(), o.addr)
}
