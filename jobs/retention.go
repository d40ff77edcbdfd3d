package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// retentionBatchSize bounds one DELETE, so retention never holds long locks
// or builds a huge transaction.
const retentionBatchSize = 1000

// RetentionArgs are the args of the periodic job that deletes finished
// events older than the retention, with their deliveries and attempts, and
// hookrelay's River jobs finished before then. River's own cleaner keeps
// finished jobs for a day, about a job per delivery under a steady load: on a
// shared River client it is the application's, and it cannot tell
// hookrelay's jobs from the application's.
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

// Work deletes in batches until nothing old is left, events first, then
// River jobs; a batch per statement keeps locks short.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	start := time.Now()
	before := w.now().Add(-w.retention)
	for _, prune := range []func() (int, error){
		func() (int, error) {
			n, err := w.store.DeleteFinishedEvents(ctx, before, retentionBatchSize)
			w.metrics.pruned.Add(float64(n))
			return int(n), wrap(err, "retention")
		},
		func() (int, error) {
			n, err := client.Driver().GetExecutor().JobDeleteBefore(ctx, &riverdriver.JobDeleteBeforeParams{
				CancelledDoDelete: true, CancelledFinalizedAtHorizon: before,
				CompletedDoDelete: true, CompletedFinalizedAtHorizon: before,
				DiscardedDoDelete: true, DiscardedFinalizedAtHorizon: before,
				Max: retentionBatchSize, QueuesIncluded: []string{QueueDeliver, QueueControl}, Schema: client.Schema(),
			})
			w.metrics.prunedJobs.Add(float64(n))
			return n, wrap(err, "retention of River's finished jobs")
		},
	} {
		for n := retentionBatchSize; n == retentionBatchSize; {
			var err error
			if n, err = prune(); err != nil {
				return err
			}
			if n == retentionBatchSize && time.Since(start) > retentionRunMax {
				_, err := client.Insert(ctx, RetentionArgs{}, nil)
				return wrap(err, "queue the rest of retention")
			}
		}
	}
	return nil
}
