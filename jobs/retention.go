package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// retentionBatchSize bounds one DELETE, so retention never holds long locks
// or builds a huge transaction.
const retentionBatchSize = 1000

// RetentionArgs are the args of the periodic job that deletes finished
// events older than the retention, with their deliveries and attempts.
type RetentionArgs struct{}

// Kind is a storage format: renaming it would strand queued jobs.
func (RetentionArgs) Kind() string { return "hookrelay_retention" }

// InsertOpts put retention beside fan-out, away from deliveries.
func (RetentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: controlMaxAttempts}
}

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	owner     *owner
	store     *outbox.Store
	retention time.Duration
	now       func() time.Time
	metrics   *metrics
	timeout   time.Duration
}

// Middleware: the job works only while its process holds its lock.
func (w *retentionWorker) Middleware(*rivertype.JobRow) []rivertype.WorkerMiddleware {
	return []rivertype.WorkerMiddleware{&ownedWork{owner: w.owner}}
}

func (w *retentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration { return w.timeout }
func (w *retentionWorker) NextRetry(job *river.Job[RetentionArgs]) time.Time {
	return controlRetry(job.Attempt)
}

// retentionRunMax bounds one retention job, far below its timeout; a job
// that has more to delete queues its successor.
const retentionRunMax = 10 * time.Second

// Work deletes in batches until nothing old is left; a batch per statement
// keeps locks short.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	start := time.Now()
	before := w.now().Add(-w.retention)
	for {
		n, err := w.store.DeleteFinishedEvents(ctx, before, retentionBatchSize)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		w.metrics.pruned.Add(float64(n))
		if n < retentionBatchSize {
			return nil
		}
		if time.Since(start) > retentionRunMax {
			_, err := river.ClientFromContext[pgx.Tx](ctx).Insert(ctx, RetentionArgs{}, nil)
			return wrap(err, "queue the rest of retention")
		}
	}
}
