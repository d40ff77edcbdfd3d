package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/capture"
	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// options are the settings every command shares: each flag defaults to its
// environment variable.
type options struct {
	command       string // "hookrelay serve", say
	databaseURL   string
	schema        string
	riverSchema   string
	addr          string
	adminToken    string
	allowCIDRs    string
	retrySchedule string
	timeout       string
	retention     string
	rescueAfter   string
	disableAfter  string
	dbMaxConns    int
	maxPayload    int
	hookConns     int
	hostConns     int
	tenantConns   int
	processConns  int
	// envErr reports an environment variable that is not a valid number.
	envErr error
}

// addrDefault is where serve listens unless told otherwise.
const addrDefault = "127.0.0.1:8080"

// DBMaxConnsDefault sizes the connection pool: enough for River's workers,
// which hold a connection only around each query, without crowding a small
// Postgres with backends that compete for its cores.
const dbMaxConnsDefault = 25

func newFlagSet(name string) (*flag.FlagSet, *options) {
	fs := flag.NewFlagSet("hookrelay "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &options{command: fs.Name()}
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres connection string (DATABASE_URL)")
	fs.StringVar(&o.schema, "schema", envOr("HOOKRELAY_SCHEMA", outbox.SchemaDefault), "schema of all tables (HOOKRELAY_SCHEMA)")
	fs.StringVar(&o.riverSchema, "river-schema", os.Getenv("HOOKRELAY_RIVER_SCHEMA"), "schema of River's tables when they are the application's, such as public; default: --schema (HOOKRELAY_RIVER_SCHEMA)")
	fs.StringVar(&o.addr, "addr", envOr("HOOKRELAY_ADDR", addrDefault), "listen address of serve (HOOKRELAY_ADDR)")
	fs.StringVar(&o.adminToken, "admin-token", os.Getenv("HOOKRELAY_ADMIN_TOKEN"), "bearer token for /api/ and /riverui/ (HOOKRELAY_ADMIN_TOKEN)")
	fs.StringVar(&o.allowCIDRs, "allow-cidrs", os.Getenv("HOOKRELAY_ALLOW_CIDRS"), "CIDRs deliveries may reach despite the SSRF guard (HOOKRELAY_ALLOW_CIDRS)")
	fs.StringVar(&o.retrySchedule, "retry-schedule", envOr("HOOKRELAY_RETRY_SCHEDULE", joinDurations(jobs.RetryScheduleDefault)), "waits between attempts (HOOKRELAY_RETRY_SCHEDULE)")
	fs.StringVar(&o.timeout, "timeout", envOr("HOOKRELAY_TIMEOUT", jobs.TimeoutDefault.String()), "per-attempt HTTP timeout (HOOKRELAY_TIMEOUT)")
	fs.StringVar(&o.retention, "retention", envOr("HOOKRELAY_RETENTION", jobs.RetentionDefault.String()), "how long finished events are kept (HOOKRELAY_RETENTION)")
	fs.IntVar(&o.maxPayload, "max-payload-bytes", o.envInt("HOOKRELAY_MAX_PAYLOAD_BYTES", outbox.MaxPayloadBytesDefault), "largest event data and context, JSON bytes (HOOKRELAY_MAX_PAYLOAD_BYTES)")
	fs.IntVar(&o.dbMaxConns, "db-max-conns", o.envInt("HOOKRELAY_DB_MAX_CONNS", dbMaxConnsDefault), "most database connections (HOOKRELAY_DB_MAX_CONNS)")
	fs.IntVar(&o.hookConns, "hook-concurrency", o.envInt("HOOKRELAY_HOOK_CONCURRENCY", jobs.HookConcurrencyDefault), "most requests in flight to one hook, per process (HOOKRELAY_HOOK_CONCURRENCY)")
	fs.IntVar(&o.hostConns, "host-concurrency", o.envInt("HOOKRELAY_HOST_CONCURRENCY", jobs.HostConcurrencyDefault), "most requests in flight, and kept-alive connections, to one receiver host, per process (HOOKRELAY_HOST_CONCURRENCY)")
	fs.IntVar(&o.tenantConns, "tenant-concurrency", o.envInt("HOOKRELAY_TENANT_CONCURRENCY", jobs.TenantConcurrencyDefault), "most requests in flight to the hooks of one tenant, per process (HOOKRELAY_TENANT_CONCURRENCY)")
	fs.IntVar(&o.processConns, "process-concurrency", o.envInt("HOOKRELAY_PROCESS_CONCURRENCY", jobs.ProcessConcurrencyDefault), "most requests in flight, per process (HOOKRELAY_PROCESS_CONCURRENCY)")
	fs.StringVar(&o.disableAfter, "disable-after", envOr("HOOKRELAY_DISABLE_AFTER", jobs.DisableAfterDefault.String()), "disable a hook failing continuously this long (HOOKRELAY_DISABLE_AFTER)")
	fs.StringVar(&o.rescueAfter, "rescue-after", envOr("HOOKRELAY_RESCUE_AFTER", jobs.RescueAfterDefault.String()), "backstop: how long a job may run before any process takes it back, for a process alive but cut off from Postgres; a dead process's jobs come back within seconds (HOOKRELAY_RESCUE_AFTER)")
	return fs, o
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// envInt reads a positive number from the environment, remembering in
// o.envErr one that is not.
func (o *options) envInt(name string, fallback int) int {
	value := os.Getenv(name)
	if value == "" {
		return fallback
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		o.envErr = usagef("invalid %s %q: give a positive whole number", name, value)
		return fallback
	}
	return n
}

func joinDurations(durations []time.Duration) string {
	parts := make([]string, len(durations))
	for i, d := range durations {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// parse parses args into fs and returns the positional arguments, which may
// stand before, between or after the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{text: commandHelp(fs)}
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseID parses args that must hold exactly one positional ID.
func parseID(fs *flag.FlagSet, args []string) (string, error) {
	positional, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(positional) != 1 {
		return "", usagef("%s takes one ID, got %d arguments", fs.Name(), len(positional))
	}
	return positional[0], nil
}

func parseNone(fs *flag.FlagSet, args []string) error {
	positional, err := parse(fs, args)
	if err == nil && len(positional) > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), positional[0])
	}
	return err
}

// helpRequest is -h or --help: its text goes to stdout, and the exit status
// is 0.
type helpRequest struct{ text string }

func (h *helpRequest) Error() string { return h.text }

// commandHelp is a command's usage block, as go help prints one: its lines of
// the overview, then each flag with its environment variable and default.
func commandHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s [flags]\n\n", fs.Name())
	name := strings.Fields(fs.Name()) // hookrelay hooks show
	for _, line := range strings.Split(usage, "\n") {
		words := strings.Fields(line)
		if len(words) >= 2 && len(name) >= 2 && words[0] == name[0] && words[1] == name[1] &&
			(len(name) == 2 || slices.Contains(words, name[len(name)-1])) {
			fmt.Fprintln(&b, strings.TrimSpace(line))
		}
	}
	common, _ := newFlagSet("")
	var own, shared []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if common.Lookup(f.Name) != nil {
			shared = append(shared, f)
		} else {
			own = append(own, f)
		}
	})
	for _, group := range []struct {
		title string
		flags []*flag.Flag
	}{{"\nflags:", own}, {"\nsettings of every command (flag, or the environment variable named):", shared}} {
		if len(group.flags) == 0 {
			continue
		}
		fmt.Fprintln(&b, group.title)
		for _, f := range group.flags {
			fmt.Fprintf(&b, "  --%-20s %s", f.Name, f.Usage)
			if f.DefValue != "" && f.DefValue != "[]" && f.DefValue != "false" {
				fmt.Fprintf(&b, " (default %s)", redactDefault(f))
			}
			fmt.Fprintln(&b)
		}
	}
	return b.String()
}

// redactDefault is a flag's default for help, with the secrets the
// environment gave it left out: the admin token, and the database URL's
// password.
func redactDefault(f *flag.Flag) string {
	switch f.Name {
	case "admin-token":
		return "(set, from HOOKRELAY_ADMIN_TOKEN)"
	case "database-url":
		u, err := url.Parse(f.DefValue)
		if err != nil || u.Scheme == "" { // not a URL: key=value settings, say
			return "(set, from DATABASE_URL)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return f.DefValue
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// openStore connects to the database and checks that it is migrated.
func (o *options) openStore(ctx context.Context) (*outbox.Store, error) {
	store, err := o.connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := store.CheckMigrated(ctx); err != nil {
		store.Pool().Close()
		return nil, err
	}
	return store, nil
}

// printFromStore opens the store, prints what fn returns as JSON and closes
// the store.
func (o *options) printFromStore(ctx context.Context, stdout io.Writer, fn func(store *outbox.Store) (any, error)) error {
	store, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	result, err := fn(store)
	if err != nil {
		return err
	}
	return printJSON(stdout, result)
}

// printFromCapturer is printFromStore for the captures of the store.
func (o *options) printFromCapturer(ctx context.Context, stdout io.Writer, fn func(c *capture.Capturer) (any, error)) error {
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return fn(capture.New(store))
	})
}

// connect connects to the database without checking its schema.
func (o *options) connect(ctx context.Context) (*outbox.Store, error) {
	if o.envErr != nil {
		return nil, o.envErr
	}
	if o.databaseURL == "" {
		return nil, usagef("no database: set DATABASE_URL or --database-url")
	}
	config, err := pgxpool.ParseConfig(o.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("invalid DATABASE_URL: %w", err)
	}
	if o.dbMaxConns <= 0 {
		return nil, usagef("invalid --db-max-conns %d: give a positive number", o.dbMaxConns)
	}
	config.MaxConns = int32(min(o.dbMaxConns, 10000)) //nolint:gosec // bounded
	// Named in pg_stat_activity, beside the auth server's connections,
	// unless the URL names them.
	if _, named := config.ConnConfig.RuntimeParams["application_name"]; !named {
		config.ConnConfig.RuntimeParams["application_name"] = o.command
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	store, err := outbox.NewStore(pool, &outbox.Config{Schema: o.schema, RiverSchema: o.riverSchema, MaxPayloadBytes: o.maxPayload})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return store, nil
}

// jobsConfig turns the options into the workers' configuration.
func (o *options) jobsConfig(store *outbox.Store, logger *slog.Logger) (*jobs.Config, error) {
	schedule, err := jobs.ParseRetrySchedule(o.retrySchedule)
	if err != nil {
		return nil, usagef("%v (HOOKRELAY_RETRY_SCHEDULE)", err)
	}
	if o.hookConns <= 0 || o.hostConns <= 0 || o.tenantConns <= 0 || o.processConns <= 0 {
		return nil, usagef("invalid --hook-concurrency %d, --host-concurrency %d, --tenant-concurrency %d or --process-concurrency %d: give positive numbers",
			o.hookConns, o.hostConns, o.tenantConns, o.processConns)
	}
	durations := map[string]time.Duration{}
	for _, d := range []struct{ name, env, value string }{
		{"timeout", "HOOKRELAY_TIMEOUT", o.timeout},
		{"retention", "HOOKRELAY_RETENTION", o.retention},
		{"rescue-after", "HOOKRELAY_RESCUE_AFTER", o.rescueAfter},
		{"disable-after", "HOOKRELAY_DISABLE_AFTER", o.disableAfter},
	} {
		parsed, err := time.ParseDuration(d.value)
		if err != nil || parsed <= 0 {
			return nil, usagef("invalid %s %q: give a positive Go duration such as 10s or 168h (%s)", d.name, d.value, d.env)
		}
		durations[d.name] = parsed
	}
	allow, err := jobs.ParseCIDRs(o.allowCIDRs)
	if err != nil {
		return nil, usagef("%v (HOOKRELAY_ALLOW_CIDRS)", err)
	}
	return &jobs.Config{
		Store:              store,
		RetrySchedule:      schedule,
		Timeout:            durations["timeout"],
		AllowCIDRs:         allow,
		Retention:          durations["retention"],
		RescueAfter:        durations["rescue-after"],
		DisableAfter:       durations["disable-after"],
		HookConcurrency:    o.hookConns,
		HostConcurrency:    o.hostConns,
		TenantConcurrency:  o.tenantConns,
		ProcessConcurrency: o.processConns,
		Logger:             logger,
	}, nil
}

// newService is a jobs.Service for commands that only insert jobs.
func (o *options) newService(store *outbox.Store) (*jobs.Service, error) {
	config, err := o.jobsConfig(store, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return jobs.NewService(config)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newLogger logs JSON unless stderr is a terminal.
// newLogger logs at INFO, or at the level HOOKRELAY_LOG_LEVEL names (debug,
// info, warn, error); at debug, River's own INFO lines and each attempt's
// outcome are logged too.
func newLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(envOr("HOOKRELAY_LOG_LEVEL", "info"))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if info, err := os.Stderr.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
