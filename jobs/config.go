package jobs

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookrelay/hookrelay/outbox"
)

// Defaults of Config.
const (
	TimeoutDefault            = 10 * time.Second
	PollIntervalDefault       = 10 * time.Millisecond
	FanOutBatchSizeDefault    = 1000
	MaxWorkersDefault         = 100
	FetchCooldownDefault      = 5 * time.Millisecond
	FetchPollIntervalDefault  = time.Second
	RescueAfterDefault        = 35 * time.Second
	RetentionDefault          = 168 * time.Hour
	RetentionIntervalDefault  = 10 * time.Minute
	DisableAfterDefault       = 5 * 24 * time.Hour
	HookConcurrencyDefault    = 64
	HostConcurrencyDefault    = 128
	TenantConcurrencyDefault  = 512
	ProcessConcurrencyDefault = 1024
)

// RetryScheduleDefault spreads 8 attempts over about 28 hours, like Svix.
var RetryScheduleDefault = []time.Duration{ //nolint:gochecknoglobals // a documented default
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Config configures the workers. A nil *Config means every default.
type Config struct {
	// Store holds the outbox. Required.
	Store *outbox.Store

	// RetrySchedule is the wait before each retry: a delivery is attempted
	// len(RetrySchedule)+1 times at most, with ±20 % jitter on each wait.
	// Defaults to RetryScheduleDefault.
	RetrySchedule []time.Duration

	// Timeout bounds one attempt, from connecting to the end of the answer.
	// Defaults to TimeoutDefault.
	Timeout time.Duration

	// AllowCIDRs are private or local networks that deliveries may reach
	// despite the SSRF guard. Defaults to none.
	AllowCIDRs []netip.Prefix

	// PollInterval is how often each process looks for unclaimed events.
	// Defaults to PollIntervalDefault.
	PollInterval time.Duration

	// FanOutBatchSize is the most events one fan-out job claims. Defaults to
	// FanOutBatchSizeDefault.
	FanOutBatchSize int

	// MaxWorkers is how many jobs one process works at once. Defaults to
	// MaxWorkersDefault.
	MaxWorkers int

	// FetchCooldown and FetchPollInterval tune River's fetching (River's
	// defaults of 100 ms and 1 s cap a process at a few thousand jobs a
	// second). Default to FetchCooldownDefault and FetchPollIntervalDefault.
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration

	// RescueAfter is how long a job may run before it is run again at once,
	// whoever runs it: the backstop for a process alive but cut off from
	// Postgres; a dead process's jobs come back within seconds (see
	// rescuer.go). A live process
	// has ended it by then: a job is cancelled at its timeout (twice Timeout
	// plus 5 s) and records what it did within recordTimeout. Defaults to
	// RescueAfterDefault, and is raised to at least that bound plus 5 s.
	RescueAfter time.Duration

	// Retention is how long finished events, deliveries and attempts are
	// kept. Defaults to RetentionDefault.
	Retention time.Duration

	// RetentionInterval is how often retention runs. Defaults to
	// RetentionIntervalDefault, or a quarter of a shorter Retention (10 s at
	// least), so that what it keeps swings by a quarter at most.
	RetentionInterval time.Duration

	// DisableAfter disables a hook whose attempts have all failed for this
	// long, like Svix; a success resets the clock, as does re-enabling.
	// Defaults to DisableAfterDefault.
	DisableAfter time.Duration

	// HookConcurrency is how many requests one process has in flight to one
	// hook at most, those it no longer waits for included (see gate.go).
	// Defaults to HookConcurrencyDefault.
	HookConcurrency int

	// HostConcurrency is how many requests one process has in flight to one
	// receiver host (scheme, host and port) at most, over as many kept-alive
	// connections. Keep it at least twice HookConcurrency, so that a hook
	// that answers can use all its slots beside stalled ones. Defaults to
	// HostConcurrencyDefault.
	HostConcurrency int

	// TenantConcurrency is how many requests one process has in flight to
	// the hooks of one tenant at most (hooks without a tenant count as one
	// tenant). Defaults to TenantConcurrencyDefault.
	TenantConcurrency int

	// ProcessConcurrency is how many requests one process has in flight at
	// most. Defaults to ProcessConcurrencyDefault.
	//
	// Stalled hooks take at most half of each of these bounds, so that
	// answering hooks always have the other half (see gate.go); a host's may
	// be exceeded by half while hooks that stalled with their requests in
	// flight wait for them to end.
	ProcessConcurrency int

	// TracerProvider, when set, makes spans of the fan-out and of each
	// delivery attempt of events published inside a trace, in that trace
	// (see tracing.go). Defaults to none: requests then carry the
	// publisher's traceparent as it is.
	TracerProvider trace.TracerProvider

	// Now is the clock. Defaults to time.Now; tests inject their own.
	Now func() time.Time

	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() *Config {
	config := *c
	if config.RetrySchedule == nil {
		config.RetrySchedule = RetryScheduleDefault
	}
	config.Timeout = orDefault(config.Timeout, TimeoutDefault)
	config.PollInterval = orDefault(config.PollInterval, PollIntervalDefault)
	config.FanOutBatchSize = orDefault(config.FanOutBatchSize, FanOutBatchSizeDefault)
	config.MaxWorkers = orDefault(config.MaxWorkers, MaxWorkersDefault)
	config.FetchCooldown = orDefault(config.FetchCooldown, FetchCooldownDefault)
	config.FetchPollInterval = orDefault(config.FetchPollInterval, FetchPollIntervalDefault)
	config.RescueAfter = max(orDefault(config.RescueAfter, RescueAfterDefault), jobTimeout(config.Timeout)+recordTimeout+5*time.Second)
	config.Retention = orDefault(config.Retention, RetentionDefault)
	config.RetentionInterval = orDefault(config.RetentionInterval, min(RetentionIntervalDefault, max(config.Retention/4, 10*time.Second)))
	config.DisableAfter = orDefault(config.DisableAfter, DisableAfterDefault)
	config.HookConcurrency = orDefault(config.HookConcurrency, HookConcurrencyDefault)
	config.HostConcurrency = orDefault(config.HostConcurrency, HostConcurrencyDefault)
	config.TenantConcurrency = orDefault(config.TenantConcurrency, TenantConcurrencyDefault)
	config.ProcessConcurrency = orDefault(config.ProcessConcurrency, ProcessConcurrencyDefault)
	if config.Now == nil {
		config.Now = time.Now
	}
	if config.Logger == nil {
		config.Logger = slog.Default()
	}
	return &config
}

// gateBounds are the bounds of the request slots.
func (c *Config) gateBounds() gateBounds {
	return gateBounds{hook: c.HookConcurrency, host: c.HostConcurrency, tenant: c.TenantConcurrency, process: c.ProcessConcurrency}
}

// tracer is the relay's tracer, nil when it does not trace.
func (c *Config) tracer() trace.Tracer {
	if c.TracerProvider == nil {
		return nil
	}
	return c.TracerProvider.Tracer(tracerName)
}

func orDefault[T comparable](value, fallback T) T {
	var zero T
	if value == zero {
		return fallback
	}
	return value
}

// ParseRetrySchedule parses comma-separated Go durations, such as
// "5s,5m,30m,2h".
func ParseRetrySchedule(s string) ([]time.Duration, error) {
	var schedule []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("invalid retry schedule %q: give comma-separated positive Go durations such as 5s,5m,30m,2h", s)
		}
		schedule = append(schedule, d)
	}
	if len(schedule) > 50 {
		return nil, fmt.Errorf("invalid retry schedule: %d retries, at most 50", len(schedule))
	}
	return schedule, nil
}

// ParseCIDRs parses comma-separated CIDRs or bare IP addresses, such as
// "10.0.0.0/8,127.0.0.1". The empty string is no networks.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if addr, err := netip.ParseAddr(part); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR %q in allow list: give networks such as 10.0.0.0/8 or fd00::/8, or addresses such as 127.0.0.1", part)
		}
		if prefix.Addr().Is4In6() {
			prefix = netip.PrefixFrom(prefix.Addr().Unmap(), max(prefix.Bits()-96, 0))
		}
		prefixes = append(prefixes, prefix.Masked())
	}
	return prefixes, nil
}

// jobTimeout bounds a job: a deliver job starts requests for one request
// timeout (see deliverWorker.sendAll), waits up to another for the last of
// them, and loads its batch; a fan-out batch takes far less.
func jobTimeout(requestTimeout time.Duration) time.Duration {
	return 2*requestTimeout + 5*time.Second
}

// recordTimeout bounds the recording of a deliver job's outcomes, which runs
// even after the job's context ended: the requests were made.
const recordTimeout = 5 * time.Second
