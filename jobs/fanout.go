package jobs

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookrelay/hookrelay/outbox"
)

// FanOutArgs are the args of the job that turns events into deliveries. Each
// process keeps at most one of its own queued or running (see
// Service.queueFanOut); concurrent ones claim disjoint batches.
type FanOutArgs struct{}

// Kind is a storage format: renaming it would strand queued jobs.
func (FanOutArgs) Kind() string { return "hookrelay_fanout" }

// InsertOpts: a failed fan-out is retried a few times, though the next poll
// queues a fresh job anyway.
func (FanOutArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: controlMaxAttempts}
}

// A fan-out job lingers: it claims events as they come, every PollInterval,
// until none came for fanOutLingerIdle or it has run for fanOutLingerMax. At
// light load one job then serves many events instead of one job per poll
// that found some.
const (
	fanOutLingerIdle = 100 * time.Millisecond
	fanOutLingerMax  = 2 * time.Second
)

type fanOutWorker struct {
	river.WorkerDefaults[FanOutArgs]
	owner        *owner
	store        *outbox.Store
	batchSize    int
	pollInterval time.Duration
	deliverOpts  *river.InsertOpts
	metrics      *metrics
	running      *atomic.Int32 // fan-out jobs running in this process
	stopping     *atomic.Bool  // the relay is stopping: linger no more
	timeout      time.Duration
	tracer       trace.Tracer // nil: the relay does not trace
}

// Middleware: the job works only while its process holds its lock.
func (w *fanOutWorker) Middleware(*rivertype.JobRow) []rivertype.WorkerMiddleware {
	return []rivertype.WorkerMiddleware{&ownedWork{owner: w.owner}}
}

// Timeout and NextRetry are hookrelay's, whatever the River client's
// defaults: a shared client's JobTimeout and RetryPolicy are the
// application's.
func (w *fanOutWorker) Timeout(*river.Job[FanOutArgs]) time.Duration { return w.timeout }
func (w *fanOutWorker) NextRetry(job *river.Job[FanOutArgs]) time.Time {
	return controlRetry(job.Attempt)
}

// Work fans out batches of events until the outbox has been quiet for a
// moment; the last batch completes the job in its own transaction.
func (w *fanOutWorker) Work(ctx context.Context, job *river.Job[FanOutArgs]) error {
	w.running.Add(1)
	defer w.running.Add(-1)
	start := time.Now()
	lastClaim := start
	for {
		now := time.Now()
		last := w.stopping.Load() || now.Sub(start) >= fanOutLingerMax || now.Sub(lastClaim) >= fanOutLingerIdle
		claimed, full, err := w.fanOut(ctx, job, last)
		if err != nil || last {
			return err
		}
		if claimed > 0 {
			lastClaim = time.Now()
		}
		if full {
			continue // more wait
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.pollInterval):
		}
	}
}

// fanOut claims a batch of events, creates their deliveries and a deliver job
// per hook (per deliverBatchMax of its deliveries), and, if last, completes
// the job, all in one transaction: either all of it happens, once, or none
// of it and the events stay to be claimed again. It returns how many events
// it claimed, and whether more may wait.
func (w *fanOutWorker) fanOut(ctx context.Context, job *river.Job[FanOutArgs], last bool) (claimed int, full bool, err error) {
	start := trace.WithTimestamp(time.Now())
	var traced []*outbox.TracedEvent
	err = pgx.BeginFunc(ctx, w.store.Pool(), func(tx pgx.Tx) error {
		res, err := w.store.FanOutTx(ctx, tx, w.batchSize)
		if err != nil {
			return err
		}
		claimed, full, traced = res.Events, res.Full, res.Traced
		client := river.ClientFromContext[pgx.Tx](ctx)
		var params []river.InsertManyParams
		for _, group := range res.Deliveries {
			params = append(params, deliverJobs(group.HookID, group.DeliveryIDs, w.deliverOpts)...)
		}
		if len(params) > 0 {
			if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
				return fmt.Errorf("insert %d deliver jobs: %w", len(params), err)
			}
		}
		if !last {
			return nil
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete fan-out job: %w", err)
		}
		// A full batch means more events wait: queue the next batch now
		// rather than at the next poll.
		if res.Full {
			if _, err := client.InsertTx(ctx, tx, FanOutArgs{}, nil); err != nil {
				return fmt.Errorf("insert next fan-out job: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		w.metrics.fannedOut.Add(float64(claimed))
		traceFanOut(ctx, w.tracer, traced, start)
	}
	return claimed, full, err
}
