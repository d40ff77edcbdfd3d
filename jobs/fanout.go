package jobs

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/hookrelay/hookrelay/outbox"
)

// FanOutArgs are the args of the job that turns a batch of events into
// deliveries. Each process keeps at most one of its own queued or running
// (see Service.queueFanOut); concurrent ones claim disjoint batches.
type FanOutArgs struct{}

// Kind is a storage format: renaming it would strand queued jobs.
func (FanOutArgs) Kind() string { return "hookrelay_fanout" }

// InsertOpts: a failed fan-out is retried a few times, though the next poll
// queues a fresh job anyway.
func (FanOutArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: 3}
}

type fanOutWorker struct {
	river.WorkerDefaults[FanOutArgs]
	store       *outbox.Store
	batchSize   int
	deliverOpts *river.InsertOpts
	metrics     *metrics
}

// Work claims a batch of events, creates their deliveries and a deliver job
// per hook (per deliverBatchMax of its deliveries),
// and completes itself in one transaction: either all of it happens, once, or
// none of it and the events stay to be claimed again.
func (w *fanOutWorker) Work(ctx context.Context, job *river.Job[FanOutArgs]) error {
	return pgx.BeginFunc(ctx, w.store.Pool(), func(tx pgx.Tx) error {
		res, err := w.store.FanOutTx(ctx, tx, w.batchSize)
		if err != nil {
			return err
		}
		client := river.ClientFromContext[pgx.Tx](ctx)
		var params []river.InsertManyParams
		for _, group := range res.Deliveries {
			params = append(params, deliverJobs(group.DeliveryIDs, w.deliverOpts)...)
		}
		if len(params) > 0 {
			if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
				return fmt.Errorf("insert %d deliver jobs: %w", len(params), err)
			}
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete fan-out job: %w", err)
		}
		w.metrics.fannedOut.Add(float64(res.Events)) // an overcount if the commit fails
		// A full batch means more events wait: queue the next batch now
		// rather than at the next poll.
		if res.Events == w.batchSize {
			if _, err := client.InsertTx(ctx, tx, FanOutArgs{}, nil); err != nil {
				return fmt.Errorf("insert next fan-out job: %w", err)
			}
		}
		return nil
	})
}
