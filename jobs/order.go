package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/hookrelay/hookrelay/outbox"
)

// Ordered delivery (hooks ordered by subject): a run sends no delivery that
// an earlier one of its subject holds back (outbox.Store.HoldBack), and
// notes its job on those it holds back; the run that makes a delivery final
// wakes the job holding back the next one of its subject (wake.go).

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
// report, and the soonest one of those may go (zero when none waits): they
// stay pending, and the job comes back when a run finishes a predecessor
// and wakes it, or at the backstop (see orderRecheck and
// deliverWorker.rest).
func (w *deliverWorker) holdBack(ctx context.Context, jobID int64, sends []*outbox.Send, report *RunReport) ([]*outbox.Send, time.Time, error) {
	var ordered []*outbox.Send
	for _, send := range sends {
		if send.OrderKey != "" {
			ordered = append(ordered, send)
		}
	}
	if len(ordered) == 0 {
		return sends, time.Time{}, nil
	}
	held, err := w.store.HoldBack(ctx, jobID, ordered)
	if err != nil || len(held) == 0 {
		return sends, time.Time{}, err
	}
	report.HeldBack = len(held)
	var soonest time.Time
	for _, until := range held {
		if soonest.IsZero() || until.Before(soonest) {
			soonest = until
		}
	}
	sends = slices.DeleteFunc(sends, func(s *outbox.Send) bool {
		_, isHeld := held[s.DeliveryID]
		return isHeld
	})
	return sends, soonest, nil
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earlier is the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
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
