package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// SoakResult is a soak: a steady load for a while, with a retention short
// enough to apply within it, and the tables sampled.
type SoakResult struct {
	DeliveriesPerS   int         `json:"offered_deliveries_per_s"`
	Hooks            int         `json:"hooks"`
	Seconds          float64     `json:"seconds"`
	RetentionSeconds float64     `json:"retention_seconds"`
	Latency          Percentiles `json:"latency_ms"`
	// RiverJobsPerDelivery counts every River job the relay inserted
	// (deliver, fan-out, retention, reconciler) over the deliveries made.
	RiverJobsPerDelivery float64 `json:"river_jobs_per_delivery"`
	// PostgresCPUPerDeliveryUS is Postgres's CPU over the soak per
	// delivery made: publishing the events, fanning them out, sending and
	// recording, River's jobs, retention and the samples; 0 when the
	// cluster is not on this machine.
	PostgresCPUPerDeliveryUS float64       `json:"postgres_cpu_us_per_delivery"`
	Samples                  []*SoakSample `json:"samples"`
}

// SoakSample is the schema's tables at one moment.
type SoakSample struct {
	Seconds    float64 `json:"seconds"`
	Events     int64   `json:"events"`
	Deliveries int64   `json:"deliveries"`
	Attempts   int64   `json:"attempts"`
	RiverJobs  int64   `json:"river_jobs"`
	// Bytes is the schema's tables with their indexes and TOAST.
	Bytes int64 `json:"bytes"`
}

// Soak offers config.Rate deliveries/s for duration to a service whose
// retention is retention, and samples the tables every duration/samples.
func Soak(ctx context.Context, config *Config, duration, retention time.Duration, samples int, progress io.Writer) (*SoakResult, error) {
	pool, err := newPool(ctx, config.DatabaseURL, 25)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	config.Retention = retention
	env, err := newEnvironment(ctx, pool, config)
	if err != nil {
		return nil, err
	}
	defer env.close()
	res := &SoakResult{DeliveriesPerS: config.Rate, Hooks: config.Hooks, Seconds: duration.Seconds(), RetentionSeconds: retention.Seconds()}
	firstJob, err := env.lastJobID(ctx)
	if err != nil {
		return nil, err
	}
	pg, pgVisible := newPostgresCPU(ctx, pool)
	var pgBefore time.Duration
	if pgVisible {
		if pgBefore, err = pg.read(); err != nil {
			return nil, err
		}
	}

	type loaded struct {
		latency Percentiles
		err     error
	}
	done := make(chan loaded, 1)
	start := time.Now()
	go func() {
		latency, _, err := env.latency(ctx, config.Rate, duration, false)
		done <- loaded{latency, err}
	}()
	ticker := time.NewTicker(duration / time.Duration(samples))
	defer ticker.Stop()
	for {
		select {
		case out := <-done:
			if out.err != nil {
				return nil, out.err
			}
			res.Latency = out.latency
			lastJob, err := env.lastJobID(ctx)
			if err != nil {
				return nil, err
			}
			res.RiverJobsPerDelivery = float64(lastJob-firstJob) / float64(out.latency.N)
			if pgVisible {
				pgAfter, err := pg.read()
				if err != nil {
					return nil, err
				}
				res.PostgresCPUPerDeliveryUS = float64((pgAfter - pgBefore).Microseconds()) / float64(out.latency.N)
			}
			return res, nil
		case <-ticker.C:
			sample, err := env.sample(ctx)
			if err != nil {
				return nil, err
			}
			sample.Seconds = time.Since(start).Round(time.Second).Seconds()
			res.Samples = append(res.Samples, sample)
			fmt.Fprintf(progress, "bench: soak at %.0f s: %d events, %d deliveries, %d attempts, %d River jobs, %.1f MiB\n",
				sample.Seconds, sample.Events, sample.Deliveries, sample.Attempts, sample.RiverJobs, float64(sample.Bytes)/(1<<20))
		}
	}
}

// lastJobID is the newest River job's ID: IDs count the jobs inserted.
func (e *environment) lastJobID(ctx context.Context) (int64, error) {
	var id int64
	err := e.pool.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM "+benchSchema+".river_job").Scan(&id)
	return id, err
}

func (e *environment) sample(ctx context.Context) (*SoakSample, error) {
	s := &SoakSample{}
	err := e.pool.QueryRow(ctx, fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[1]s.events), (SELECT count(*) FROM %[1]s.deliveries),
		(SELECT count(*) FROM %[1]s.delivery_attempts), (SELECT count(*) FROM %[1]s.river_job),
		(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = '%[1]s' AND c.relkind = 'r')`, benchSchema)).
		Scan(&s.Events, &s.Deliveries, &s.Attempts, &s.RiverJobs, &s.Bytes)
	return s, err
}
