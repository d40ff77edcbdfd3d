package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// metrics are the service's Prometheus metrics. Counters count what this
// process did; gauges are read from the database (at most every
// gaugesMaxAge), so every process reports the same.
type metrics struct {
	registry        *prometheus.Registry
	fannedOut       prometheus.Counter
	attempts        *prometheus.CounterVec
	finished        *prometheus.CounterVec
	attemptDuration prometheus.Histogram
	pruned          prometheus.Counter
	prunedJobs      prometheus.Counter
	rescued         prometheus.Counter
	reconciled      prometheus.Counter
	database        *databaseCollector
}

// Attempt results, the values of the result label.
const (
	resultSuccess   = "success"
	resultHTTPError = "http_error"
	resultError     = "error"
)

func newMetrics(store *outbox.Store, now func() time.Time, logger *slog.Logger) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookrelay_events_fanned_out_total",
			Help: "Published events this process fanned out to their hooks.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_delivery_attempts_total",
			Help: "Delivery attempts by result: success (2xx), http_error (another status) or error (no answer).",
		}, []string{"result"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_deliveries_finished_total",
			Help: "Deliveries that reached a final status: succeeded, failed or canceled.",
		}, []string{"status"}),
		attemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookrelay_delivery_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, from the request's start to the end of the answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookrelay_retention_events_deleted_total",
			Help: "Finished events (with their deliveries and attempts) deleted by retention.",
		}),
		prunedJobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookrelay_retention_jobs_deleted_total",
			Help: "hookrelay's finished River jobs deleted by retention.",
		}),
		reconciled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookrelay_deliveries_reconciled_total",
			Help: "Pending deliveries that no live job carried (a deleted job, say) and that were given one again.",
		}),
		rescued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookrelay_jobs_rescued_total",
			Help: "Jobs stranded by a dead process that this process gave back to the queue.",
		}),
	}
	for _, status := range []string{outbox.DeliverySucceeded, outbox.DeliveryFailed, outbox.DeliveryCanceled} {
		m.finished.WithLabelValues(status)
	}
	for _, result := range []string{resultSuccess, resultHTTPError, resultError} {
		m.attempts.WithLabelValues(result)
	}
	m.database = &databaseCollector{store: store, now: now, logger: logger}
	m.registry.MustRegister(m.fannedOut, m.attempts, m.finished, m.attemptDuration, m.pruned, m.prunedJobs, m.rescued, m.reconciled, m.database,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setClient gives the gauges the River client to read River's tables with;
// ownSchema says River's tables hold hookrelay's jobs only.
func (m *metrics) setClient(client *river.Client[pgx.Tx], ownSchema bool) {
	m.database.mu.Lock()
	defer m.database.mu.Unlock()
	m.database.client, m.database.ownSchema = client, ownSchema
}

func (m *metrics) observeAttempt(out *outcome) {
	switch {
	case out.succeeded():
		m.attempts.WithLabelValues(resultSuccess).Inc()
	case out.result.StatusCode != 0:
		m.attempts.WithLabelValues(resultHTTPError).Inc()
	default:
		m.attempts.WithLabelValues(resultError).Inc()
	}
	m.attemptDuration.Observe(out.result.Duration.Seconds())
}

var (
	outboxLagDesc = prometheus.NewDesc("hookrelay_outbox_lag_seconds",
		"Age of the oldest event waiting for fan-out; 0 when none waits.", nil, nil)
	pendingDesc = prometheus.NewDesc("hookrelay_deliveries_pending",
		"River jobs not yet finalized, across all processes: deliver jobs (each carries up to 100 of a hook's deliveries) and a few fan-out jobs. Not reported when River's tables are shared with the application's jobs.", nil, nil)
	queueDesc = prometheus.NewDesc("hookrelay_river_queue_jobs",
		"River jobs of hookrelay's queues by state (available or running).", []string{"queue", "state"}, nil)
)

// gaugesMaxAge is how long the database gauges are served from memory: a
// scraping loop, however tight, costs the database a few queries per
// gaugesMaxAge at most.
const gaugesMaxAge = 10 * time.Second

// databaseCollector reads the gauges from the database when a scrape finds
// them older than gaugesMaxAge; concurrent scrapes share one read.
type databaseCollector struct {
	store  *outbox.Store
	now    func() time.Time
	logger *slog.Logger

	mu        sync.Mutex
	client    *river.Client[pgx.Tx] // nil until the relay starts
	ownSchema bool
	readAt    time.Time
	gauges    []prometheus.Metric
}

func (c *databaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxLagDesc
	ch <- pendingDesc
	ch <- queueDesc
}

func (c *databaseCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.readAt) >= gaugesMaxAge {
		c.gauges, c.readAt = c.read(), time.Now()
	}
	for _, m := range c.gauges {
		ch <- m
	}
}

func (c *databaseCollector) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var gauges []prometheus.Metric
	if lag, err := c.store.OutboxLag(ctx, c.now()); err == nil {
		gauges = append(gauges, prometheus.MustNewConstMetric(outboxLagDesc, prometheus.GaugeValue, lag.Seconds()))
	} else {
		c.logger.WarnContext(ctx, "metrics: read outbox lag", "error", err)
	}
	if c.client == nil {
		return gauges
	}
	exec, schema := c.client.Driver().GetExecutor(), c.client.Schema()
	if c.ownSchema {
		// River's state indexes count these cheaply, where counting pending
		// deliveries would scan the table.
		pending := 0
		for _, state := range []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled} {
			n, err := exec.JobCountByState(ctx, &riverdriver.JobCountByStateParams{Schema: schema, State: state})
			if err != nil {
				c.logger.WarnContext(ctx, "metrics: count River jobs", "error", err)
				return gauges
			}
			pending += n
		}
		gauges = append(gauges, prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending)))
	}
	counts, err := exec.JobCountByQueueAndState(ctx, &riverdriver.JobCountByQueueAndStateParams{
		QueueNames: []string{QueueDeliver, QueueControl},
		Schema:     schema,
	})
	if err != nil {
		c.logger.WarnContext(ctx, "metrics: count River jobs", "error", err)
		return gauges
	}
	for _, count := range counts {
		gauges = append(gauges,
			prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(count.CountAvailable), count.Queue, "available"),
			prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(count.CountRunning), count.Queue, "running"))
	}
	return gauges
}
