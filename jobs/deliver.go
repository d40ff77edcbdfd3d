package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/hookrelay/hookrelay/outbox"
)

// DeliverArgs are the args of the job that sends a batch of deliveries to
// one hook. They hold IDs only: never a secret, and nothing that could go
// stale.
type DeliverArgs struct {
	HookID string `json:"hook_id"`
	// Deliveries are the deliveries' IDs, separated by spaces. One string,
	// not an array: River's GIN index on args holds an entry per array
	// element, which cost more than the deliveries' own rows, where a long
	// string is one hashed entry.
	Deliveries string `json:"deliveries"`

	// DeliveryID is the one delivery of a job queued by hookrelay 0.1, which
	// had a job per delivery; such jobs still run.
	DeliveryID string `json:"delivery_id,omitempty"`

	// Test marks a test-send: attempted once, whether its hook is enabled
	// or not.
	Test bool `json:"test,omitempty"`

	// nextRetry carries the time of the next run from Work, which records
	// it on the deliveries, to NextRetry, which River calls with the same
	// job; it is never stored.
	nextRetry time.Time
}

// Kind is a storage format: renaming it would strand queued jobs.
func (DeliverArgs) Kind() string { return "hookrelay_deliver" }

func (a *DeliverArgs) ids() []string {
	ids := strings.Fields(a.Deliveries)
	if a.DeliveryID != "" {
		ids = append(ids, a.DeliveryID)
	}
	return ids
}

// Batches: one job carries at most deliverBatchMax deliveries to its hook and
// has at most sendConcurrency of their requests in flight at once, over kept
// alive connections.
const (
	deliverBatchMax = 100
	sendConcurrency = 16
)

// storeRetryDelay is the wait before retrying a job whose database work
// failed; such failures do not count as attempts.
const storeRetryDelay = 5 * time.Second

// deliverMaxAttempts is the River job's MaxAttempts: one more than a
// delivery's attempts, so that a last attempt cut short by a crash is run
// again by River's rescuer instead of being discarded with its deliveries
// still pending.
func deliverMaxAttempts(schedule []time.Duration) int {
	return len(schedule) + 2
}

// deliverJobs returns the jobs that send ids, deliveries to hookID.
func deliverJobs(hookID string, ids []string, opts *river.InsertOpts) []river.InsertManyParams {
	params := make([]river.InsertManyParams, 0, (len(ids)+deliverBatchMax-1)/deliverBatchMax)
	for batch := range slices.Chunk(ids, deliverBatchMax) {
		params = append(params, river.InsertManyParams{Args: DeliverArgs{HookID: hookID, Deliveries: strings.Join(batch, " ")}, InsertOpts: opts})
	}
	return params
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	store        *outbox.Store
	sender       *sender
	schedule     []time.Duration
	disableAfter time.Duration
	gate         *hookGate
	metrics      *metrics
	logger       *slog.Logger
	timeout      time.Duration // of one request
}

// BatchError is returned from a run of a deliver job in which some
// deliveries failed or were not attempted; River retries the job for them on
// the schedule, and its UI shows why.
type BatchError struct {
	// Deliveries is how many deliveries the run had to send.
	Deliveries int
	// Failed is how many of them failed.
	Failed int
	// NotAttempted is how many were not sent, because the receiver stopped
	// answering or the run's sending window ended; they use no attempt.
	NotAttempted int
	// First is the first failure's delivery and result.
	FirstDeliveryID string
	First           *outbox.AttemptResult
}

func (e *BatchError) Error() string {
	msg := fmt.Sprintf("%d of %d deliveries failed", e.Failed, e.Deliveries)
	if e.NotAttempted > 0 {
		msg += fmt.Sprintf(", %d not attempted", e.NotAttempted)
	}
	if e.First != nil {
		msg += fmt.Sprintf("; first: delivery %s attempt %d: %s", e.FirstDeliveryID, e.First.Attempt, describeResult(e.First))
	}
	return msg
}

func describeResult(r *outbox.AttemptResult) string {
	if r.Error != "" {
		return r.Error
	}
	return fmt.Sprintf("receiver answered %d", r.StatusCode)
}

// Timeout is hookrelay's, whatever the River client's JobTimeout.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return jobTimeout(w.timeout)
}

// NextRetry is the retry schedule's, whatever the River client's
// RetryPolicy.
func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	if !job.Args.nextRetry.IsZero() {
		return job.Args.nextRetry
	}
	return time.Now().Add(retryDelay(w.schedule, job.Attempt, 0))
}

// Work sends the job's pending deliveries concurrently, records every
// outcome in one transaction, and leaves the failed ones pending for River
// to retry the job on the schedule: each delivery keeps its own attempts and
// state, and a delivery that succeeded is never sent again by its job.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	last := job.Attempt >= len(w.schedule)+1 || job.Args.Test
	// A receiver that is not answering other jobs' requests is left alone
	// until the next attempt, before this job costs even a query.
	// Jobs queued before deliver jobs carried their hook are not gated. A
	// refused job waits without using an attempt, as long as the retry
	// schedule's next wait after as many refusals: a receiver that stays
	// down costs few fetches, and the deliveries' attempts are only spent
	// on requests.
	if hookID := job.Args.HookID; hookID != "" {
		if !w.gate.enter(hookID) {
			return river.JobSnooze(retryDelay(w.schedule, snoozes(job)+1, 0))
		}
		defer w.gate.leave(hookID)
	}
	sends, err := w.store.LoadSends(ctx, job.Args.ids())
	if err != nil {
		return w.storeFailed(ctx, job, err)
	}
	// Deliveries no longer pending were finished by an earlier run that River
	// did not see complete, a replay or a cancel; deleted ones are gone.
	sends = slices.DeleteFunc(sends, func(s *outbox.Send) bool { return s.Status != outbox.DeliveryPending })
	if !job.Args.Test {
		if sends, err = w.cancelDisabled(ctx, sends); err != nil {
			return w.storeFailed(ctx, job, err)
		}
	}
	if len(sends) == 0 {
		return nil
	}

	outcomes := make([]*outcome, len(sends))
	w.sendAll(ctx, sends, outcomes, last)
	run := &BatchError{Deliveries: len(sends)}
	var records []*outbox.AttemptRecord
	var disable *outbox.Hook
	var disableReason string
	var retryAfter time.Duration
	for i, send := range sends {
		out := outcomes[i]
		if out == nil {
			run.NotAttempted++
			continue
		}
		w.metrics.observeAttempt(out)
		status := outbox.DeliveryPending
		switch {
		case out.succeeded():
			status = outbox.DeliverySucceeded
		case out.result.StatusCode == http.StatusGone:
			status = outbox.DeliveryFailed
			disable, disableReason = send.Hook, "receiver answered 410 Gone at "+out.result.At.UTC().Format(time.RFC3339)
		case send.Hook.FailingSince != nil && out.result.At.Sub(*send.Hook.FailingSince) >= w.disableAfter:
			status = outbox.DeliveryFailed
			disable, disableReason = send.Hook, fmt.Sprintf("every attempt failed since %s, for more than %s",
				send.Hook.FailingSince.UTC().Format(time.RFC3339), w.disableAfter)
		case last:
			status = outbox.DeliveryFailed
		}
		if status != outbox.DeliverySucceeded {
			run.Failed++
			if run.First == nil {
				run.FirstDeliveryID, run.First = send.DeliveryID, out.result
			}
			retryAfter = max(retryAfter, out.retryAfter)
		}
		records = append(records, &outbox.AttemptRecord{Send: send, Result: out.result, Status: status})
	}

	// The failed deliveries' next attempt, recorded for operators, is the
	// job's next run.
	job.Args.nextRetry = time.Now().Add(retryDelay(w.schedule, job.Attempt, retryAfter))
	for _, r := range records {
		if r.Status == outbox.DeliveryPending {
			r.NextAttemptAt = job.Args.nextRetry
		}
	}

	// Record even if the job's context ended: the requests were made. The
	// outcomes and a hook's disabling commit together. A database that is
	// briefly away (a restart, a failover) is waited for within
	// recordTimeout: outcomes not recorded mean their requests are made again.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	record := func() error {
		return pgx.BeginFunc(recordCtx, w.store.Pool(), func(tx pgx.Tx) error {
			recorded, err := w.store.RecordAttemptsTx(recordCtx, tx, records)
			if err != nil {
				return err
			}
			w.countFinished(records, recorded) // an overcount if the commit fails
			if disable != nil {
				_, err = w.store.DisableHookTx(recordCtx, tx, disable.ID, disableReason)
			}
			return err
		})
	}
	// Recording again is safe: each outcome is recorded only on a delivery
	// that still has the attempts it had when loaded.
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		if err = record(); err == nil || !sleep(recordCtx, wait) {
			break
		}
	}
	if err != nil {
		return w.storeFailed(ctx, job, err)
	}
	for _, r := range records {
		w.logger.DebugContext(ctx, "delivery attempted", "delivery_id", r.Send.DeliveryID, "hook_id", r.Send.Hook.ID,
			"attempt", r.Result.Attempt, "status_code", r.Result.StatusCode, "status", r.Status)
	}

	switch {
	case disable != nil:
		w.logger.WarnContext(ctx, "hook disabled", "hook_id", disable.ID, "reason", disableReason)
		return river.JobCancel(run)
	case run.Failed > 0:
		if last {
			// Cancel rather than let River discard: see deliverMaxAttempts.
			return river.JobCancel(run)
		}
		return run
	case run.NotAttempted > 0:
		// Every request answered, but the sending window ended: send the
		// rest at once, without using an attempt.
		return river.JobSnooze(0)
	}
	return nil
}

// cancelDisabled cancels the deliveries of disabled hooks (disabling cancels
// a hook's pending deliveries, but a fan-out that read the hook enabled may
// have committed after it) and returns the others.
func (w *deliverWorker) cancelDisabled(ctx context.Context, sends []*outbox.Send) ([]*outbox.Send, error) {
	var canceled []string
	sends = slices.DeleteFunc(sends, func(s *outbox.Send) bool {
		if !s.Hook.Enabled {
			canceled = append(canceled, s.DeliveryID)
		}
		return !s.Hook.Enabled
	})
	if len(canceled) == 0 {
		return sends, nil
	}
	if err := w.store.CancelDeliveries(ctx, canceled, "hook disabled"); err != nil {
		return nil, err
	}
	w.metrics.finished.WithLabelValues(outbox.DeliveryCanceled).Add(float64(len(canceled)))
	return sends, nil
}

// sendAll sends the deliveries, sendConcurrency at a time, and sets each
// one's outcome, leaving nil those it did not send: once the receiver has
// failed to answer a request (a timeout, a refused or reset connection), or
// the sending window of one timeout has passed, no new request starts, so that
// a dead receiver holds its job for about one timeout, however large the
// batch. On the last attempt every delivery gets its request, all at once,
// so that none fails without one.
func (w *deliverWorker) sendAll(ctx context.Context, sends []*outbox.Send, outcomes []*outcome, last bool) {
	deadline := time.Now().Add(w.sender.timeout)
	concurrency := sendConcurrency
	if last {
		concurrency = len(sends)
	}
	slots := make(chan struct{}, concurrency)
	var unanswered atomic.Bool
	var wg sync.WaitGroup
	for i, send := range sends {
		slots <- struct{}{}
		if !last && (unanswered.Load() || ctx.Err() != nil || time.Now().After(deadline)) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.gate.requestStarted(send.Hook.ID)
			out := w.sender.send(ctx, send, send.Attempts+1)
			answered := out.result.StatusCode != 0
			w.gate.requestEnded(send.Hook.ID, answered)
			if !answered {
				unanswered.Store(true)
			}
			outcomes[i] = out
		}()
	}
	wg.Wait()
}

// countFinished counts the deliveries that the records moved to a final
// status.
func (w *deliverWorker) countFinished(records []*outbox.AttemptRecord, statuses map[string]string) {
	for _, r := range records {
		if r.Status != outbox.DeliveryPending && statuses[r.Send.DeliveryID] == r.Status {
			w.metrics.finished.WithLabelValues(r.Status).Inc()
		}
	}
}

// snoozes is how many times the job was snoozed, as River counts them.
func snoozes(job *river.Job[DeliverArgs]) int {
	var metadata struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(job.Metadata, &metadata)
	return metadata.Snoozes
}

// storeFailed snoozes a job whose database work failed, so an outage does not
// use up a delivery's attempts.
func (w *deliverWorker) storeFailed(ctx context.Context, job *river.Job[DeliverArgs], err error) error {
	w.logger.WarnContext(ctx, "deliveries postponed: database error", "job_id", job.ID, "deliveries", len(job.Args.ids()), "error", err)
	return river.JobSnooze(storeRetryDelay)
}

// sleep waits for d, or less if ctx ends first, and reports whether it
// waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
