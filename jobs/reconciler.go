package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// The reconciler finds pending deliveries that no live deliver job carries
// (its job was deleted, from River's UI for one, or discarded) and queues
// jobs for them, so that every delivery reaches a final state.
const (
	reconcileInterval = 5 * time.Minute
	// reconcileGrace leaves alone deliveries changed this recently: their
	// jobs are being queued or worked.
	reconcileGrace = time.Minute
	// reconcileBatchMax bounds the deliveries one run looks at.
	reconcileBatchMax = 10000
)

// liveJobStates are the states of a job that will still run.
var liveJobStates = []rivertype.JobState{ //nolint:gochecknoglobals
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// ReconcileArgs are the args of the periodic job that gives pending
// deliveries without a live job one.
type ReconcileArgs struct{}

// Kind is a storage format: renaming it would strand queued jobs.
func (ReconcileArgs) Kind() string { return "hookrelay_reconcile" }

// InsertOpts put the reconciler beside fan-out, away from deliveries.
func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: controlMaxAttempts}
}

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	owner       *owner
	store       *outbox.Store
	deliverOpts *river.InsertOpts
	metrics     *metrics
	logger      *slog.Logger
	timeout     time.Duration
}

// Middleware: the job works only while its process holds its lock.
func (w *reconcileWorker) Middleware(*rivertype.JobRow) []rivertype.WorkerMiddleware {
	return []rivertype.WorkerMiddleware{&ownedWork{owner: w.owner}}
}

func (w *reconcileWorker) Timeout(*river.Job[ReconcileArgs]) time.Duration { return w.timeout }
func (w *reconcileWorker) NextRetry(job *river.Job[ReconcileArgs]) time.Time {
	return controlRetry(job.Attempt)
}

func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	// Pending deliveries and live jobs are read in one snapshot: a job that
	// finishes in between (its deliveries no longer pending) cannot look
	// missing. In any snapshot a pending delivery has a live job (each job
	// is queued or replaced in the transaction that makes its deliveries
	// pending, and ends after the one that ends them), unless its job was
	// deleted or discarded: the orphans this looks for.
	var pending []*outbox.PendingDelivery
	var carried map[string]bool
	err := pgx.BeginTxFunc(ctx, w.store.Pool(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		pending, err = w.store.ListPendingDeliveriesTx(ctx, tx, time.Now().Add(-reconcileGrace), reconcileBatchMax)
		if err == nil && len(pending) > 0 {
			carried, err = liveDeliveries(ctx, client, tx)
		}
		return err
	})
	if err != nil || len(pending) == 0 {
		return err
	}
	orphans := map[string][]string{} // hook ID → delivery IDs
	n := 0
	for _, d := range pending {
		if !carried[d.ID] {
			orphans[d.HookID] = append(orphans[d.HookID], d.ID)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var params []river.InsertManyParams
	for hookID, ids := range orphans {
		params = append(params, deliverJobs(hookID, ids, w.deliverOpts)...)
	}
	if _, err := client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("queue jobs for %d deliveries without one: %w", n, err)
	}
	w.metrics.reconciled.Add(float64(n))
	w.logger.WarnContext(ctx, "pending deliveries had no job: queued jobs for them", "deliveries", n)
	return nil
}

// liveDeliveries returns the IDs of the deliveries that live deliver jobs
// carry, as tx sees them.
func liveDeliveries(ctx context.Context, client *river.Client[pgx.Tx], tx pgx.Tx) (map[string]bool, error) {
	carried := map[string]bool{}
	params := river.NewJobListParams().Kinds(DeliverArgs{}.Kind()).States(liveJobStates...).First(1000)
	for {
		res, err := client.JobListTx(ctx, tx, params)
		if err != nil {
			return nil, fmt.Errorf("list live deliver jobs: %w", err)
		}
		for _, job := range res.Jobs {
			var args DeliverArgs
			if err := json.Unmarshal(job.EncodedArgs, &args); err != nil {
				return nil, fmt.Errorf("decode args of job %d: %w", job.ID, err)
			}
			for _, id := range args.ids() {
				carried[id] = true
			}
		}
		if len(res.Jobs) < 1000 {
			return carried, nil
		}
		params = params.After(res.LastCursor)
	}
}

// hasLiveJob reports whether a live deliver job carries the delivery.
func hasLiveJob(ctx context.Context, client *river.Client[pgx.Tx], deliveryID string) (bool, error) {
	res, err := client.JobList(ctx, deliveryJobsParams(deliveryID).States(liveJobStates...).First(1))
	if err != nil {
		return false, fmt.Errorf("look for the job of delivery %s: %w", deliveryID, err)
	}
	return len(res.Jobs) > 0, nil
}

// DeliveryJobs returns the River jobs that carry or carried the delivery and
// that River still keeps, newest first, for operators.
func (r *Relay) DeliveryJobs(ctx context.Context, deliveryID string) ([]*rivertype.JobRow, error) {
	client, err := r.started()
	if err != nil {
		return nil, err
	}
	res, err := client.JobList(ctx, deliveryJobsParams(deliveryID).OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(20))
	if err != nil {
		return nil, fmt.Errorf("list the jobs of delivery %s: %w", deliveryID, err)
	}
	return res.Jobs, nil
}

// deliveryJobsParams selects the deliver jobs whose batch holds the delivery.
func deliveryJobsParams(deliveryID string) *river.JobListParams {
	return river.NewJobListParams().Kinds(DeliverArgs{}.Kind()).
		Where("strpos(args->>'deliveries', @id) > 0 OR args->>'delivery_id' = @id", river.NamedArgs{"id": deliveryID})
}
