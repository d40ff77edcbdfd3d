package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

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

// deliverMaxAttempts is the River job's MaxAttempts. A deliver job uses no
// River attempt for its deliveries' failures, which each delivery counts
// (it snoozes instead); River's attempts are only for a run that panics. One
// whose attempts run out leaves its pending deliveries to the reconciler.
const deliverMaxAttempts = 10

// dueSlack: a run sends the deliveries due within it, so that deliveries due
// a moment apart share a run.
const dueSlack = 100 * time.Millisecond

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
	gate         *slotGate // request slots (gate.go)
	health       *health   // logs hooks that fail and answer again (health.go)
	client       func() *river.Client[pgx.Tx]
	metrics      *metrics
	logger       *slog.Logger
	timeout      time.Duration // of one request
	// owner gives the context of requests, which may outlive their run;
	// inFlight counts those that do, for Drain to wait for.
	owner    *owner
	inFlight *sync.WaitGroup
	// blockedLogged is when each hook's refusal by the SSRF guard was last
	// logged.
	blockedLogged sync.Map // hook ID → time.Time
	// refused are the jobs that stepped aside for their stalled hook, by
	// hook ID: they are woken when it answers again.
	refusedMu sync.Mutex
	refused   map[string]map[int64]struct{}
	// here are the jobs running in this process, and waker wakes those
	// running elsewhere once their runs end: both for jobs holding back
	// successors (wake.go).
	here  *localRuns
	waker *waker
	// fetch has River fetch jobs whose short snoozes end (fetch.go), which
	// its poll, every fetchPoll, would find late.
	fetch     fetchTimer
	fetchPoll time.Duration
}

// blockedLogEvery is how often a hook whose receiver the SSRF guard refuses
// is logged: each of its attempts fails the same way.
const blockedLogEvery = 5 * time.Minute

// logBlocked logs, at warning level and once per hook per blockedLogEvery,
// that the SSRF guard refused a hook's receiver: its deliveries stay
// pending, and only the log and the attempts say why.
func (w *deliverWorker) logBlocked(ctx context.Context, send *outbox.Send, out *outcome) {
	now := time.Now()
	if last, ok := w.blockedLogged.Load(send.Hook.ID); ok && now.Sub(last.(time.Time)) < blockedLogEvery { //nolint:forcetypeassert
		return
	}
	w.blockedLogged.Store(send.Hook.ID, now)
	w.logger.WarnContext(ctx, "deliveries refused by the SSRF guard: their receiver's address is not allowed", "hook_id", send.Hook.ID,
		"reason", out.result.Error)
}

// Middleware: the job works only while its process holds its lock.
func (w *deliverWorker) Middleware(*rivertype.JobRow) []rivertype.WorkerMiddleware {
	return []rivertype.WorkerMiddleware{&ownedWork{owner: w.owner}}
}

// A run starts requests for sendWindow, waits for them at most detachAfter
// after its last one started, and leaves those still in flight to record
// their own outcomes: a receiver slower than that, or one that holds a
// request until the timeout, holds a hook slot and a connection, not the
// worker.
const (
	sendWindow  = time.Second
	detachAfter = time.Second
)

// Rate limits (see outbox.ReserveRate): paceSlack lengthens the sending
// window of a run paced by a rate limit, so that its last reserved request,
// due just within the window from the reservation, is sent; a paced request
// that cannot leave within one interval of the rate (paceLate at least) of
// its time is left to the next reservation (a busy machine's timers are
// late by milliseconds: a tighter bound wasted reserved requests, and a
// hook at 50/s got 46); a job whose deliveries wait for the rate comes back
// rateWakeAhead before the rate allows more.
const (
	paceSlack     = 100 * time.Millisecond
	paceLate      = 5 * time.Millisecond
	rateWakeAhead = sendWindow / 2
)

// RunReport is what a run of a deliver job that leaves deliveries pending
// records as the job's output (in its metadata, shown by River's UI): what
// it sent, and why the rest waits.
type RunReport struct {
	// Sent is how many requests the run made; Succeeded and Failed how many
	// of their deliveries reached those statuses.
	Sent      int `json:"sent"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Retrying is how many got an answer other than success, or none, and
	// wait for their next attempt.
	Retrying int `json:"retrying"`
	// InFlight is how many requests the run stopped waiting for: they
	// record their own outcomes.
	InFlight int `json:"inFlight,omitempty"`
	// NotSent is how many due deliveries the run did not send (its sending
	// window ended, or the hook's slots were taken): they go again at once.
	NotSent int `json:"notSent"`
	// Throttled is how many due deliveries wait for the hook's rate limit,
	// Rate: they go at NextAttemptAt, when the rate allows more.
	Throttled int    `json:"throttled,omitempty"`
	Rate      string `json:"rate,omitempty"`
	// HeldBack is how many deliveries to a hook ordered by subject wait
	// for an earlier delivery of their subject to be final: the run that
	// makes it final wakes the job.
	HeldBack int `json:"heldBack,omitempty"`
	// Pending is how many of the job's deliveries remain pending.
	Pending int `json:"pending"`
	// NextAttemptAt is when the earliest of them is due, which the job
	// waits for; left out when none is pending.
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	// LastFailure is a failure of the run: delivery, attempt and reason.
	LastFailure string `json:"lastFailure,omitempty"`
	// Leases are the job's deliveries whose requests a process has in
	// flight: they are due at Until, or as soon as that process is gone.
	Leases []Lease `json:"leases,omitempty"`
	// Refused counts the runs in a row that found the hook stalled, with
	// Reason.
	Refused int    `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Lease is a process's hold on the job's deliveries whose next attempt is
// Until: their requests are in flight in the process with River client ID By.
type Lease struct {
	By    string    `json:"by"`
	Until time.Time `json:"until"`
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

// NextRetry follows a run that failed outright (a panic): soon, whatever the
// River client's RetryPolicy. Deliveries' own failures never come here.
func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return controlRetry(job.Attempt)
}

// Work sends the job's deliveries that are due, concurrently, records every
// outcome in one transaction, and snoozes until the next of its pending
// deliveries is due. Each delivery keeps its own attempts, state and next
// attempt: one that fails waits for its own next attempt on the schedule,
// one that the run did not send goes again at once, one whose request the
// run stopped waiting for is due again only once that request has surely
// ended, and none delays the others. A delivery fails only when its attempts
// of the schedule are used up (or by the 410 and auto-disable rules); a
// snooze uses no River attempt.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	here := w.here.begin(job.ID)
	err := w.run(ctx, job, here, time.Now())
	if w.here.end(job.ID) {
		w.wakeAfterRun([]int64{job.ID})
	}
	return err
}

// run is a run of Work, which started at started: a run woken here, by a
// run that finished a predecessor of a delivery the job holds back, runs
// again at once, within orderRecheck of the start (see rest).
func (w *deliverWorker) run(ctx context.Context, job *river.Job[DeliverArgs], here *localRun, started time.Time) error {
	previous := lastReport(job)
	sends, err := w.store.LoadSends(ctx, job.Args.ids())
	if err != nil {
		return w.storeFailed(ctx, job, err)
	}
	// Deliveries no longer pending were finished by an earlier run that River
	// did not see end, a replay or a cancel; deleted ones are gone.
	sends = slices.DeleteFunc(sends, func(s *outbox.Send) bool { return s.Status != outbox.DeliveryPending })
	if !job.Args.Test {
		if sends, err = w.cancelDisabled(ctx, sends); err != nil {
			return w.storeFailed(ctx, job, err)
		}
	}
	if len(sends) == 0 {
		return w.complete(ctx, previous, &RunReport{})
	}

	now := time.Now()
	self := river.ClientFromContext[pgx.Tx](ctx).ID()
	report := &RunReport{Pending: len(sends)}
	if err := w.endLeasesOfDead(ctx, previous, sends, report, self, now); err != nil {
		return w.storeFailed(ctx, job, err)
	}
	// held is the soonest a delivery the run holds back may go.
	var held time.Time
	if !job.Args.Test {
		if sends, held, err = w.holdBack(ctx, job.ID, sends, report); err != nil {
			return w.storeFailed(ctx, job, err)
		}
	}
	due := make([]*outbox.Send, 0, len(sends))
	for _, send := range sends {
		switch {
		case send.NextAttemptAt == nil || !send.NextAttemptAt.After(now.Add(dueSlack)) || job.Args.Test:
			due = append(due, send)
		case report.NextAttemptAt.IsZero() || send.NextAttemptAt.Before(report.NextAttemptAt):
			report.NextAttemptAt = *send.NextAttemptAt
		}
	}
	if len(due) == 0 {
		return w.rest(ctx, job, here, started, report, held)
	}
	// The longest waiting first: never attempted (or handed back), then by
	// due time.
	slices.SortStableFunc(due, func(a, b *outbox.Send) int { return cmp.Compare(dueTime(a), dueTime(b)) })
	// A hook with a rate limit gets the requests its rate allows within the
	// run's sending window, at their times; the others wait, using no
	// attempt, until the rate allows more.
	var pace *outbox.Reservation
	if hook := due[0].Hook; hook.RateLimit != "" && !job.Args.Test {
		if pace, err = w.store.ReserveRate(ctx, hook.ID, len(due), sendWindow); err != nil {
			return w.storeFailed(ctx, job, err)
		}
		if pace != nil {
			report.Rate, report.Throttled = hook.RateLimit, len(due)-pace.Reserved
			due = due[:pace.Reserved]
			if report.Throttled > 0 {
				// Back a little before the rate allows more, so that the
				// next reservation follows this one without a gap.
				if next := pace.At.Add(max(pace.Next-rateWakeAhead, 0)); report.NextAttemptAt.IsZero() || next.Before(report.NextAttemptAt) {
					report.NextAttemptAt = next
				}
			}
			if len(due) == 0 {
				return w.snooze(ctx, report, time.Until(report.NextAttemptAt))
			}
		}
	}

	run := w.sendAll(ctx, due, job.Args.Test, pace)
	w.noteRefused(job.Args.HookID, job.ID, run.refused)
	if run.refused {
		report = &RunReport{Refused: 1, Leases: report.Leases,
			Reason: "the hook's receiver is not answering: its requests in flight in this process hold every slot a stalled hook may take, so this job waits until it answers or a slot frees"}
		if previous != nil {
			report.Refused += previous.Refused
		}
		return w.snooze(ctx, report, refusalWait(report.Refused, w.timeout))
	}
	var records []*outbox.AttemptRecord
	var disable *outbox.Send
	var disableReason string
	// Deliveries that fail the same attempt in one run wait the same
	// (jittered) time, so that they go again together.
	waits := map[int]time.Duration{}
	failed, answered := 0, false
	for i, send := range due {
		out := run.outcomes[i]
		if out == nil {
			continue
		}
		record, reason := w.judge(send, out, job.Args.Test, waits)
		if reason != "" {
			disable, disableReason = send, reason
		}
		report.count(record, out)
		records = append(records, record)
		switch {
		case out.succeeded():
			answered = true
		case !out.blocked:
			failed++
		}
	}
	if !job.Args.Test {
		w.health.note(ctx, job.Args.HookID, failed, answered, report.LastFailure)
	}
	// Requests that the process cut short itself (it lost its lock, or is
	// stopping for good) count as not sent.
	report.NotSent = len(due) - len(records) - len(run.detached)
	report.InFlight = len(run.detached)
	// A detached request's delivery is not due again before its request has
	// surely ended and recorded its outcome, retrying within recordTimeout
	// as the run would have, or before its process is gone.
	var lease *Lease
	if len(run.detached) > 0 {
		lease = &Lease{By: self, Until: time.Now().Add(w.timeout + recordTimeout + time.Second).Truncate(time.Microsecond)}
		report.Leases = append(report.Leases, *lease)
		if report.NextAttemptAt.IsZero() || lease.Until.Before(report.NextAttemptAt) {
			report.NextAttemptAt = lease.Until
		}
	}

	// Record even if the job's context ended: the requests were made. The
	// outcomes, the leases (with the report that names them) and a hook's
	// disabling commit together.
	rec := &runRecord{records: records, leased: run.detached, lease: lease, job: job.JobRow, report: report, disable: disable, disableReason: disableReason}
	if err := w.record(ctx, rec); err != nil {
		return w.storeFailed(ctx, job, err)
	}
	// Wake the jobs holding back successors of what the run finished, this
	// one among them.
	w.wakeAfterRun(rec.wake)
	switch {
	case disable != nil:
		if rec.disabled {
			w.hookDisabled(ctx, disable.Hook.ID, disableReason)
		}
		return w.snooze(ctx, report, 0) // the next run cancels what is left
	case report.Pending == 0:
		return w.complete(ctx, previous, report)
	case report.NotSent > 0:
		// Not sent through no fault of their own: again at once.
		return w.snooze(ctx, report, 0)
	}
	return w.rest(ctx, job, here, started, report, held)
}

// rest ends a run that leaves deliveries pending until report.NextAttemptAt,
// or the backstop of those it holds back, the soonest of which may go at
// held (see orderRecheck). A run whose held-back deliveries may go within
// orderRecheck of when the job started lingers until then first: woken, it
// runs again at once.
func (w *deliverWorker) rest(ctx context.Context, job *river.Job[DeliverArgs], here *localRun, started time.Time, report *RunReport, held time.Time) error {
	if !held.IsZero() {
		until := started.Add(orderRecheck)
		if !report.NextAttemptAt.IsZero() {
			until = earlier(until, report.NextAttemptAt)
		}
		if held.Before(until) && w.here.linger(ctx, here, until) {
			withOutput(job, report)
			return w.run(ctx, job, here, started)
		}
		if recheck := later(held, time.Now().Add(orderRecheck)); report.NextAttemptAt.IsZero() || recheck.Before(report.NextAttemptAt) {
			report.NextAttemptAt = recheck
		}
	}
	return w.snooze(ctx, report, time.Until(report.NextAttemptAt))
}

// count counts record, the outcome of out, in the report.
func (r *RunReport) count(record *outbox.AttemptRecord, out *outcome) {
	r.Sent++
	switch record.Status {
	case outbox.DeliverySucceeded:
		r.Succeeded++
		r.Pending--
	case outbox.DeliveryFailed:
		r.Failed++
		r.Pending--
	default:
		r.Retrying++
		if r.NextAttemptAt.IsZero() || record.NextAttemptAt.Before(r.NextAttemptAt) {
			r.NextAttemptAt = record.NextAttemptAt
		}
	}
	if !out.succeeded() {
		r.LastFailure = fmt.Sprintf("delivery %s attempt %d: %s", record.Send.DeliveryID, out.result.Attempt, describeResult(out.result))
	}
}

// endLeasesOfDead makes due the deliveries that processes now dead held
// (their requests died with them), and carries the other leases into
// report. A process found gone at one look only may be cancelling its
// requests yet: its deliveries wait until the rescuer finds it dead and
// wakes the job.
func (w *deliverWorker) endLeasesOfDead(ctx context.Context, previous *RunReport, sends []*outbox.Send, report *RunReport, self string, now time.Time) error {
	if previous == nil {
		return nil
	}
	for _, lease := range previous.Leases {
		if !lease.Until.After(now) {
			continue // ended
		}
		dead := false
		if lease.By != self {
			var err error
			if dead, err = w.store.ProcessDead(ctx, lease.By, confirmAfter); err != nil {
				return err
			}
		}
		if !dead {
			report.Leases = append(report.Leases, lease)
			continue
		}
		for _, send := range sends {
			if send.NextAttemptAt != nil && send.NextAttemptAt.Equal(lease.Until) {
				send.NextAttemptAt = nil
			}
		}
	}
	return nil
}

// dueTime is when send is due; never attempted (or handed back) is the
// earliest.
func dueTime(send *outbox.Send) int64 {
	if send.NextAttemptAt == nil {
		return 0
	}
	return send.NextAttemptAt.UnixNano()
}

// judge returns the record of out, the outcome of a request for send, on
// the delivery's own schedule, and why it disables the hook, if it does.
// waits holds the run's jittered wait per place in the schedule.
func (w *deliverWorker) judge(send *outbox.Send, out *outcome, test bool, waits map[int]time.Duration) (*outbox.AttemptRecord, string) {
	w.metrics.observeAttempt(out)
	if out.blocked {
		w.logBlocked(context.Background(), send, out)
	}
	record := &outbox.AttemptRecord{Send: send, Result: out.result, Status: outbox.DeliveryPending, Test: test}
	// The attempt's place in the delivery's retry schedule, from 1.
	place := out.result.Attempt - send.ReplayedAttempts
	switch {
	case out.succeeded():
		record.Status = outbox.DeliverySucceeded
	case out.result.StatusCode == http.StatusGone:
		record.Status = outbox.DeliveryFailed
		return record, "receiver answered 410 Gone at " + out.result.At.UTC().Format(time.RFC3339)
	case send.Hook.FailingSince != nil && out.result.At.Sub(*send.Hook.FailingSince) >= w.disableAfter:
		record.Status = outbox.DeliveryFailed
		return record, fmt.Sprintf("every attempt failed since %s, for more than %s",
			send.Hook.FailingSince.UTC().Format(time.RFC3339), w.disableAfter)
	case place > len(w.schedule) || test:
		record.Status = outbox.DeliveryFailed
	default:
		wait, ok := waits[place]
		if !ok {
			wait = jitter(scheduleWait(w.schedule, place))
			waits[place] = wait
		}
		wait = honourRetryAfter(wait, out.retryAfter)
		if out.retryAfter > 0 {
			// A run sends what is due within dueSlack: never before the
			// receiver asked.
			wait += dueSlack
		}
		record.NextAttemptAt = out.result.At.Add(out.result.Duration + wait)
	}
	return record, ""
}

// runRecord is what a run records: its attempts, the deliveries whose
// requests it left in flight (under lease), and a hook's disabling; with a
// lease, the job's report, which names it, is stored too, so that whoever
// runs the job next learns whose requests its deliveries wait for.
type runRecord struct {
	records []*outbox.AttemptRecord
	leased  []*outbox.Send
	lease   *Lease
	job     *rivertype.JobRow
	report  *RunReport
	// disable is the send whose outcome disables its hook, for
	// disableReason.
	disable       *outbox.Send
	disableReason string
	// disabled is set once the record disabled the hook: a run that found
	// it disabled by another leaves the canceling to that one.
	disabled bool
	// wake are the running jobs to wake once their run ends: they hold
	// back successors of deliveries the record made final.
	wake []int64
}

// record records r in one transaction, retried within recordTimeout:
// recording again is safe, since each outcome and lease applies only to a
// delivery that still has the attempts it had when loaded.
func (w *deliverWorker) record(ctx context.Context, r *runRecord) error {
	if len(r.records) == 0 && len(r.leased) == 0 {
		return nil
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	record := func() error {
		return pgx.BeginFunc(recordCtx, w.store.Pool(), func(tx pgx.Tx) error {
			if len(r.leased) > 0 {
				if err := w.store.LeaseTx(recordCtx, tx, r.leased, r.lease.Until); err != nil {
					return err
				}
				client := river.ClientFromContext[pgx.Tx](ctx)
				if _, err := client.JobUpdateTx(recordCtx, tx, r.job.ID, &river.JobUpdateParams{Output: r.report}); err != nil {
					return fmt.Errorf("store the report of job %d: %w", r.job.ID, err)
				}
			}
			if len(r.records) == 0 {
				return nil
			}
			recorded, err := w.store.RecordAttemptsTx(recordCtx, tx, r.records)
			if err != nil {
				return err
			}
			w.countFinished(r.records, recorded) // an overcount if the commit fails
			if r.wake, err = w.wakeWaitingTx(recordCtx, tx, r.records, recorded); err != nil {
				return err
			}
			if r.disable != nil {
				// No operational event about a delivery of one.
				announce := !outbox.IsOperational(r.disable.EventType)
				_, r.disabled, err = w.store.DisableHookTx(recordCtx, tx, r.disable.Hook.ID, r.disableReason, announce)
			}
			return err
		})
	}
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		if err = record(); err == nil || !sleep(recordCtx, wait) {
			break
		}
	}
	if err != nil {
		return err
	}
	for _, rec := range r.records {
		w.logger.DebugContext(ctx, "delivery attempted", "delivery_id", rec.Send.DeliveryID, "hook_id", rec.Send.Hook.ID,
			"attempt", rec.Result.Attempt, "status_code", rec.Result.StatusCode, "status", rec.Status)
	}
	return nil
}

// recordDetached records the outcome of a request whose run stopped waiting
// for it.
func (w *deliverWorker) recordDetached(send *outbox.Send, out *outcome, test bool) {
	record, reason := w.judge(send, out, test, map[int]time.Duration{})
	if !test && !out.blocked {
		failed := 1
		if out.succeeded() {
			failed = 0
		}
		w.health.note(context.Background(), send.Hook.ID, failed, failed == 0, describeResult(out.result))
	}
	var disable *outbox.Send
	if reason != "" {
		disable = send
	}
	ctx := context.WithoutCancel(w.owner.base)
	rec := &runRecord{records: []*outbox.AttemptRecord{record}, disable: disable, disableReason: reason}
	if err := w.record(ctx, rec); err != nil {
		// The delivery goes again once its lease ends.
		w.logger.WarnContext(ctx, "recording the outcome of a request failed: the delivery goes again", "delivery_id", send.DeliveryID, "error", err)
		return
	}
	w.wakeAfterRun(rec.wake)
	if rec.disabled {
		w.hookDisabled(ctx, disable.Hook.ID, reason)
	}
}

// hookDisabled follows the recording of an outcome that disabled a hook: it
// says so and cancels the hook's pending deliveries. Many runs of a busy
// hook may judge it disabled at once: the one whose transaction disabled it
// does this, the cancels waiting for no lock (see
// outbox.Store.CancelPendingOfHook), and the others' jobs cancel their own.
func (w *deliverWorker) hookDisabled(ctx context.Context, hookID, reason string) {
	w.logger.WarnContext(ctx, "hook disabled", "hook_id", hookID, "reason", reason)
	if err := w.store.CancelPendingOfHook(ctx, hookID); err != nil {
		w.logger.WarnContext(ctx, "canceling a disabled hook's pending deliveries failed: their jobs cancel them at their next run", "hook_id", hookID, "error", err)
	}
}

// snooze ends a run that leaves deliveries pending: the job waits for d,
// using no River attempt, with report as its output for River's UI.
func (w *deliverWorker) snooze(ctx context.Context, report *RunReport, d time.Duration) error {
	if err := river.RecordOutput(ctx, report); err != nil {
		w.logger.WarnContext(ctx, "recording a deliver job's report failed", "error", err)
	}
	w.fetchAfter(d)
	return river.JobSnooze(max(d, 0))
}

// complete ends a job whose deliveries are all final. A job that reported
// before reports its last run, so that River's UI does not show a stale
// wait; most jobs never reported and write nothing.
func (w *deliverWorker) complete(ctx context.Context, previous, report *RunReport) error {
	if previous != nil {
		if err := river.RecordOutput(ctx, report); err != nil {
			w.logger.WarnContext(ctx, "recording a deliver job's report failed", "error", err)
		}
	}
	return nil
}

// lastReport is the report of the job's last run, or nil when it made none.
func lastReport(job *river.Job[DeliverArgs]) *RunReport {
	var metadata struct {
		Output *RunReport `json:"output"`
	}
	_ = json.Unmarshal(job.Metadata, &metadata)
	return metadata.Output
}

// cancelDisabled cancels the deliveries of disabled hooks (disabling cancels
// a hook's pending deliveries, but skips those being recorded, and a fan-out
// that read the hook enabled may have committed after it) and returns the
// others.
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

// sentRun is what sendAll did: the outcome of each request it waited for
// (nil for the others), the deliveries whose requests it left in flight, and
// whether the hook was stalled before it sent anything.
type sentRun struct {
	outcomes []*outcome
	detached []*outbox.Send
	refused  bool
}

// call is one request of a run.
type call struct {
	send *outbox.Send
	done chan struct{} // closed when out is set
	// out is the outcome; detached means the run stopped waiting, so the
	// request records it. Both are guarded by the run's mutex.
	out      *outcome
	detached bool
}

// sendAll sends the deliveries, sendConcurrency at a time, each holding a
// request slot (gate.go), each at its time when pace, the hook's rate limit,
// reserved them. It starts requests for sendWindow, waits for them at most
// detachAfter after the last one started, and leaves the rest in flight to
// record their own outcomes: no receiver holds the worker for long, however
// large the batch, and one that lets a request hang delays no other
// delivery.
func (w *deliverWorker) sendAll(ctx context.Context, sends []*outbox.Send, test bool, pace *outbox.Reservation) *sentRun {
	run := &sentRun{outcomes: make([]*outcome, len(sends))}
	requests, _ := w.owner.context()
	window := sendWindow
	if pace != nil {
		window += paceSlack
	}
	deadline := time.Now().Add(window)
	windowEnd := time.NewTimer(window)
	defer windowEnd.Stop()
	slots := make(chan struct{}, sendConcurrency)
	hook := sends[0].Hook // a job's deliveries are its hook's
	key := slotKey{hook: hook.ID, host: receiverHost(hook.URL), tenant: hook.TenantID}
	var mu sync.Mutex
	calls := make([]*call, 0, len(sends))
	for i, send := range sends {
		// A paced request leaves at its time, and not later than an
		// interval after it, lest it crowd the next one: it waits for the
		// next reservation then.
		if pace != nil && !sleep(ctx, time.Until(pace.Due(i))) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		case <-windowEnd.C:
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		slot, stalled := w.gate.acquire(ctx, key, deadline)
		if slot == noSlot {
			run.refused = stalled && len(calls) == 0
			break
		}
		c := &call{send: send, done: make(chan struct{})}
		calls = append(calls, c)
		w.inFlight.Add(1)
		go func() {
			defer w.inFlight.Done()
			var out *outcome
			if pace != nil && time.Since(pace.Due(i)) > max(paceLate, pace.Interval) {
				out = &outcome{result: &outbox.AttemptResult{}, aborted: true} // not sent: see paceLate
			} else {
				out = w.sender.send(requests, send, send.Attempts+1, slot)
			}
			recovered := w.gate.release(key, out.result.StatusCode != 0)
			<-slots
			mu.Lock()
			c.out = out
			detached := c.detached
			mu.Unlock()
			close(c.done)
			if detached && !out.aborted {
				w.recordDetached(send, out, test)
			}
			if recovered {
				w.wakeRefused(key.hook)
			}
		}()
	}
	wait := time.NewTimer(detachAfter)
	defer wait.Stop()
	for _, c := range calls {
		select {
		case <-c.done:
			continue
		case <-wait.C:
		case <-ctx.Done():
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	for i, c := range calls {
		switch {
		case c.out == nil:
			c.detached = true
			run.detached = append(run.detached, c.send)
		case !c.out.aborted:
			run.outcomes[i] = c.out
		}
	}
	return run
}

// noteRefused notes whether job stepped aside for its stalled hook.
func (w *deliverWorker) noteRefused(hookID string, jobID int64, refused bool) {
	w.refusedMu.Lock()
	defer w.refusedMu.Unlock()
	jobs := w.refused[hookID]
	switch {
	case refused && jobs == nil:
		w.refused[hookID] = map[int64]struct{}{jobID: {}}
	case refused:
		jobs[jobID] = struct{}{}
	case jobs != nil:
		delete(jobs, jobID)
		if len(jobs) == 0 {
			delete(w.refused, hookID)
		}
	}
}

// wakeRefused makes the jobs that stepped aside for a hook that answers
// again available at once, rather than after their refusal wait.
func (w *deliverWorker) wakeRefused(hookID string) {
	w.refusedMu.Lock()
	jobs := w.refused[hookID]
	delete(w.refused, hookID)
	w.refusedMu.Unlock()
	if len(jobs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(w.owner.base, recordTimeout)
	defer cancel()
	for id := range jobs {
		// A running job is left as it is; one that finished meanwhile runs
		// once more and finds nothing to do.
		if _, err := w.client().JobRetry(ctx, id); err != nil && !errors.Is(err, river.ErrNotFound) {
			w.logger.WarnContext(ctx, "waking a deliver job whose hook answers again failed: it wakes at its time", "job_id", id, "error", err)
		}
	}
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

// storeFailed snoozes a job whose database work failed, so an outage does not
// use up a delivery's attempts.
func (w *deliverWorker) storeFailed(ctx context.Context, job *river.Job[DeliverArgs], err error) error {
	w.logger.WarnContext(ctx, "deliveries postponed: database error", "job_id", job.ID, "deliveries", len(job.Args.ids()), "error", err)
	return river.JobSnooze(storeRetryDelay)
}

// sleep waits for d, or less if ctx ends first, and reports whether it
// waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
