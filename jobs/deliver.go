package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/riverqueue/river"

	"github.com/hookrelay/hookrelay/outbox"
)

// DeliverArgs are the args of the job that sends one delivery. They hold the
// delivery's ID only: never a secret, and nothing that could go stale.
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`

	// retryAfter carries a receiver's Retry-After from Work to NextRetry,
	// which River calls with the same job; it is never stored.
	retryAfter time.Duration
}

// Kind is a storage format: renaming it would strand queued jobs.
func (DeliverArgs) Kind() string { return "hookrelay_deliver" }

// storeRetryDelay is the wait before retrying a job whose database work
// failed; such failures do not count as attempts.
const storeRetryDelay = 5 * time.Second

// deliverMaxAttempts is the River job's MaxAttempts: one more than the
// delivery's attempts, so that a last attempt cut short by a crash is run
// again by River's rescuer instead of being discarded with its delivery
// still pending.
func deliverMaxAttempts(schedule []time.Duration) int {
	return len(schedule) + 2
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	store        *outbox.Store
	sender       *sender
	schedule     []time.Duration
	disableAfter time.Duration
	metrics      *metrics
	logger       *slog.Logger
}

// AttemptError is returned from a failed attempt that will be retried, so
// that River's UI shows why.
type AttemptError struct {
	Result *outbox.AttemptResult
}

func (e *AttemptError) Error() string {
	if e.Result.Error != "" {
		return fmt.Sprintf("attempt %d: %s", e.Result.Attempt, e.Result.Error)
	}
	return fmt.Sprintf("attempt %d: receiver answered %d", e.Result.Attempt, e.Result.StatusCode)
}

func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(retryDelay(w.schedule, job.Attempt, job.Args.retryAfter))
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	id := job.Args.DeliveryID
	send, err := w.store.GetSend(ctx, id)
	if errors.Is(err, outbox.ErrDeliveryNotFound) {
		return nil // its hook or event was deleted: nothing left to deliver
	}
	if err != nil {
		return w.storeFailed(ctx, job, err)
	}
	if send.Status != outbox.DeliveryPending {
		return nil // finished by an earlier run of this job that River did not see complete
	}
	if !send.Hook.Enabled {
		if err := w.store.CancelDelivery(ctx, id, "hook disabled"); err != nil {
			return w.storeFailed(ctx, job, err)
		}
		w.metrics.finished.WithLabelValues(outbox.DeliveryCanceled).Inc()
		return nil
	}

	out := w.sender.send(ctx, send, send.Attempts+1)
	w.metrics.observeAttempt(out)
	gone := out.result.StatusCode == http.StatusGone
	// The run of failures this attempt extends, if it fails.
	failingFor := time.Duration(0)
	if send.Hook.FailingSince != nil {
		failingFor = out.result.At.Sub(*send.Hook.FailingSince)
	}
	disable := gone || failingFor >= w.disableAfter
	last := job.Attempt >= len(w.schedule)+1
	status := outbox.DeliveryPending
	switch {
	case out.succeeded():
		status = outbox.DeliverySucceeded
	case disable || last:
		status = outbox.DeliveryFailed
	}
	// Record even if the job's context ended: the request was made.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.store.RecordAttempt(recordCtx, send, out.result, status); err != nil {
		return w.storeFailed(ctx, job, err)
	}
	if status != outbox.DeliveryPending {
		w.metrics.finished.WithLabelValues(status).Inc()
	}

	switch {
	case status == outbox.DeliverySucceeded:
		return nil
	case disable:
		reason := "receiver answered 410 Gone at " + out.result.At.UTC().Format(time.RFC3339)
		if !gone {
			reason = fmt.Sprintf("every attempt failed since %s, for more than %s", send.Hook.FailingSince.UTC().Format(time.RFC3339), w.disableAfter)
		}
		if _, err := w.store.DisableHook(recordCtx, send.Hook.ID, reason); err != nil {
			return fmt.Errorf("disable hook %s: %w", send.Hook.ID, err)
		}
		w.logger.WarnContext(ctx, "hook disabled", "hook_id", send.Hook.ID, "reason", reason)
		return river.JobCancel(&AttemptError{Result: out.result})
	}
	if last {
		// Cancel rather than let River discard: see deliverMaxAttempts.
		return river.JobCancel(&AttemptError{Result: out.result})
	}
	job.Args.retryAfter = out.retryAfter
	return &AttemptError{Result: out.result}
}

// storeFailed snoozes a job whose database work failed, so an outage does not
// use up a delivery's attempts.
func (w *deliverWorker) storeFailed(ctx context.Context, job *river.Job[DeliverArgs], err error) error {
	w.logger.WarnContext(ctx, "delivery postponed: database error", "delivery_id", job.Args.DeliveryID, "error", err)
	return river.JobSnooze(storeRetryDelay)
}
