package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// Ordered delivery (hooks ordered by subject): a run sends no delivery that
// an earlier one of its subject holds back (outbox.Store.HoldBack), and
// notes its job on those it holds back; the run that makes a delivery final
// wakes, in the same transaction, the job holding back the next one of its
// subject, or once that job's run has ended (waker), or runs again at once
// when its own job holds it.

// A job whose deliveries wait for their predecessors (hooks ordered by
// subject) is woken by the run that finishes one. As a backstop, for a wake
// that could not be made (its process died after committing, an earlier
// event made no delivery to the hook), it looks again at the soonest a
// predecessor may become final, its next attempt, and orderRecheck after
// its run at the soonest: a subject held back by a dead receiver costs a
// run or two per attempt of its head, not one every orderRecheck for hours.
const orderRecheck = 2 * time.Second

// holdBack returns sends without the deliveries that wait for an earlier
// delivery of their subject (hooks ordered by subject), which it counts in
// report, and the order keys of those: they stay pending, and the job comes
// back when a run finishes a predecessor and wakes it, or at the backstop
// (see orderRecheck).
func (w *deliverWorker) holdBack(ctx context.Context, jobID int64, sends []*outbox.Send, report *RunReport, now time.Time) ([]*outbox.Send, map[string]bool, error) {
	var ordered []*outbox.Send
	for _, send := range sends {
		if send.OrderKey != "" {
			ordered = append(ordered, send)
		}
	}
	if len(ordered) == 0 {
		return sends, nil, nil
	}
	held, err := w.store.HoldBack(ctx, jobID, ordered)
	if err != nil || len(held) == 0 {
		return sends, nil, err
	}
	report.HeldBack = len(held)
	var soonest time.Time
	for _, until := range held {
		if soonest.IsZero() || until.Before(soonest) {
			soonest = until
		}
	}
	if recheck := later(soonest, now.Add(orderRecheck)); report.NextAttemptAt.IsZero() || recheck.Before(report.NextAttemptAt) {
		report.NextAttemptAt = recheck
	}
	keys := map[string]bool{}
	sends = slices.DeleteFunc(sends, func(s *outbox.Send) bool {
		_, isHeld := held[s.DeliveryID]
		if isHeld {
			keys[s.OrderKey] = true
		}
		return isHeld
	})
	return sends, keys, nil
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// againWithin reports whether a run that started at started and recorded
// records, holding back deliveries of heldKeys, runs again at once: when it
// made final a delivery of a subject whose next delivery the job holds
// back, and its sending window is not over. Waking the job instead would
// wait for River to record the run's end, up to a quarter of a second.
func againWithin(started time.Time, records []*outbox.AttemptRecord, heldKeys map[string]bool) bool {
	if len(heldKeys) == 0 || time.Since(started) >= sendWindow {
		return false
	}
	return slices.ContainsFunc(records, func(r *outbox.AttemptRecord) bool {
		return r.Status != outbox.DeliveryPending && heldKeys[r.Send.OrderKey]
	})
}

// withOutput sets the job's report in its metadata, as River stores it, for
// a run that follows this one at once.
func withOutput(job *river.Job[DeliverArgs], report *RunReport) {
	var metadata map[string]json.RawMessage
	if json.Unmarshal(job.Metadata, &metadata) != nil || metadata == nil {
		metadata = map[string]json.RawMessage{}
	}
	metadata["output"], _ = json.Marshal(report)
	job.Metadata, _ = json.Marshal(metadata)
}

// wakeWaitingTx wakes, inside tx, the jobs that hold back the successors of
// the ordered deliveries that records made final, and returns those
// running, which it cannot wake yet (this job among them when it holds a
// successor): wakeWhenStopped wakes them once their run ends.
func (w *deliverWorker) wakeWaitingTx(ctx context.Context, tx pgx.Tx, records []*outbox.AttemptRecord, recorded map[string]string) ([]int64, error) {
	var finished []*outbox.Send
	for _, r := range records {
		if r.Send.OrderKey != "" && recorded[r.Send.DeliveryID] != "" && recorded[r.Send.DeliveryID] != outbox.DeliveryPending {
			finished = append(finished, r.Send)
		}
	}
	if len(finished) == 0 {
		return nil, nil
	}
	ids, err := w.store.WaitingAfterTx(ctx, tx, finished)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	client := w.client()
	exec := client.Driver().UnwrapExecutor(tx)
	jobs, err := exec.JobGetByIDMany(ctx, &riverdriver.JobGetByIDManyParams{ID: ids, Schema: client.Schema()})
	if err != nil {
		return nil, fmt.Errorf("read %d waiting jobs: %w", len(ids), err)
	}
	var running []int64
	woken := false
	for _, job := range jobs {
		switch job.State {
		case rivertype.JobStateRunning:
			running = append(running, job.ID)
		case rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStateAvailable:
			if _, err := client.JobRetryTx(ctx, tx, job.ID); err != nil {
				return nil, fmt.Errorf("wake job %d: %w", job.ID, err)
			}
			woken = true
		default: // finished, or replaced by the rescuer: its successor runs on its own
		}
	}
	if woken {
		err = exec.NotifyMany(ctx, fetchNow(client))
	}
	return running, err
}

// fetchNow is the notification that has every process fetch deliver jobs at
// once, as River's own after an insert ("river_insert"): a woken job is
// otherwise found at the next fetch poll, up to a second later.
func fetchNow(client *river.Client[pgx.Tx]) *riverdriver.NotifyManyParams {
	return &riverdriver.NotifyManyParams{Payload: []string{fmt.Sprintf(`{"queue": %q}`, QueueDeliver)}, Schema: client.Schema(), Topic: "river_insert"}
}

// waker wakes deliver jobs once their runs end: River records a run's end a
// moment after it returns (up to a quarter of a second, its batch
// completer's pace), and a running job cannot be made available. One
// goroutine per process looks at every job it waits for every
// wakePollInterval, for as long as a run may last.
type waker struct {
	mu      sync.Mutex
	until   map[int64]time.Time // job → when to stop looking
	running bool
}

// wakePollInterval is how often the waker looks.
const wakePollInterval = 10 * time.Millisecond

// wakeAfterRun wakes the running jobs ids once their runs end.
func (w *deliverWorker) wakeAfterRun(ids []int64) {
	if len(ids) == 0 {
		return
	}
	w.waker.mu.Lock()
	defer w.waker.mu.Unlock()
	if w.waker.until == nil {
		w.waker.until = map[int64]time.Time{}
	}
	until := time.Now().Add(jobTimeout(w.timeout))
	for _, id := range ids {
		w.waker.until[id] = until
	}
	if !w.waker.running {
		w.waker.running = true
		go w.wakeWhenStopped()
	}
}

// wakeWhenStopped looks at the jobs the waker waits for until none is left.
func (w *deliverWorker) wakeWhenStopped() {
	ctx := w.owner.base
	client := w.client()
	exec := client.Driver().GetExecutor()
	for sleep(ctx, wakePollInterval) {
		ids := w.waker.waiting()
		if len(ids) == 0 {
			return
		}
		jobs, err := exec.JobGetByIDMany(ctx, &riverdriver.JobGetByIDManyParams{ID: ids, Schema: client.Schema()})
		if err != nil {
			continue
		}
		var done []int64
		woken := false
		for _, job := range jobs {
			switch job.State {
			case rivertype.JobStateRunning:
				continue
			case rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStateAvailable:
				// A short snooze leaves a job available, but not before
				// its time: waking makes it due now.
				if _, err := client.JobRetry(ctx, job.ID); err != nil {
					continue
				}
				woken = true
			default: // finished, or replaced by the rescuer
			}
			done = append(done, job.ID)
		}
		w.waker.forget(done)
		if woken {
			_ = exec.NotifyMany(ctx, fetchNow(client))
		}
	}
	w.waker.stop()
}

// waiting returns the jobs still to wake, forgetting those looked for long
// enough; with none left, the waker's goroutine ends.
func (k *waker) waiting() []int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	ids := make([]int64, 0, len(k.until))
	for id, until := range k.until {
		if now.After(until) {
			delete(k.until, id)
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		k.running = false
	}
	return ids
}

// forget stops looking at the jobs ids.
func (k *waker) forget(ids []int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range ids {
		delete(k.until, id)
	}
}

// stop forgets every job: the relay stopped.
func (k *waker) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.until)
	k.running = false
}
