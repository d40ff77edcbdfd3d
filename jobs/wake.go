package jobs

import (
	"context"
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

// Waking the deliver jobs that hold back successors (order.go). The run that
// makes a delivery final wakes, in the same transaction, the job holding back
// the next one of its subject: through River when it is not running; here
// at once when it runs in this process (localRuns), its own job included;
// when it runs in another process, through a notification that process
// hears (hearWakes), and through River once its run ends (waker), should
// the notification come too late.

// wakeWaitingTx wakes, inside tx, the jobs that hold back the successors of
// the ordered deliveries that records made final, and returns those
// running, which River cannot wake (this job among them when it holds a
// successor): wakeAfterRun wakes them once tx commits. Those running in
// other processes hear of it when tx commits.
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
	var running, elsewhere []int64
	woken := false
	for _, job := range jobs {
		switch job.State {
		case rivertype.JobStateRunning:
			running = append(running, job.ID)
			if !w.here.has(job.ID) {
				elsewhere = append(elsewhere, job.ID)
			}
		case rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStateAvailable:
			if _, err := client.JobRetryTx(ctx, tx, job.ID); err != nil {
				return nil, fmt.Errorf("wake job %d: %w", job.ID, err)
			}
			woken = true
		default: // finished, or replaced by the rescuer: its successor runs on its own
		}
	}
	if woken {
		if err := exec.NotifyMany(ctx, fetchNow(client)); err != nil {
			return nil, err
		}
	}
	if len(elsewhere) > 0 {
		err = w.store.WakeJobsTx(ctx, tx, elsewhere)
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

// wakeAfterRun wakes the running jobs ids: those running here at once, the
// others once their runs end.
func (w *deliverWorker) wakeAfterRun(ids []int64) {
	ids = slices.DeleteFunc(ids, w.here.wake)
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

// localRuns are the deliver jobs running in this process. A job holding back
// successors is often running when the run that makes their predecessor
// final wakes it: River cannot make a running job available, and records a
// run's end up to a quarter of a second after it returns (its batch
// completer's pace), so a wake through River comes that much late. Woken
// here, a run runs again at once; and a run holding back deliveries, with
// nothing else to do, lingers for its wake, within orderRecheck of its
// start, rather than ending at once (deliverWorker.rest).
type localRuns struct {
	mu   sync.Mutex
	runs map[int64]*localRun // by job ID
	// maxLingering is how many runs may linger at once: a lingering run
	// holds a River worker, and the others must be left to other jobs.
	maxLingering int
	lingering    int
	// stopping is closed when the relay stops: no run lingers from then on,
	// so that Stop drains quickly.
	stopping chan struct{}
}

func newLocalRuns(maxWorkers int) *localRuns {
	return &localRuns{runs: map[int64]*localRun{}, maxLingering: max(maxWorkers/lingerShare, 1), stopping: make(chan struct{})}
}

// stop ends every linger, now and to come.
func (l *localRuns) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.stopping:
	default:
		close(l.stopping)
	}
}

// lingerShare: at most one in lingerShare of a process's deliver workers
// linger at once.
const lingerShare = 4

type localRun struct {
	woken chan struct{} // closed by a wake
}

// begin notes that job id runs here.
func (l *localRuns) begin(id int64) *localRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &localRun{woken: make(chan struct{})}
	l.runs[id] = r
	return r
}

// has reports whether job id runs here.
func (l *localRuns) has(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.runs[id]
	return ok
}

// wake wakes job id if it runs here, and reports whether it does.
func (l *localRuns) wake(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.runs[id]
	if ok && !r.isWoken() {
		close(r.woken)
	}
	return ok
}

func (r *localRun) isWoken() bool {
	select {
	case <-r.woken:
		return true
	default:
		return false
	}
}

// end notes that job id's run ended, and reports whether a wake came that
// no run of it saw: the job must be woken once River records the end.
func (l *localRuns) end(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.runs[id]
	delete(l.runs, id)
	return r.isWoken()
}

// linger waits, if not too many runs linger already, until r is woken,
// until, ctx ends or the relay stops; it reports whether r was woken, ready
// to be woken again.
func (l *localRuns) linger(ctx context.Context, r *localRun, until time.Time) bool {
	l.mu.Lock()
	woken := r.woken
	crowded := l.lingering >= l.maxLingering
	if !crowded {
		l.lingering++
	}
	l.mu.Unlock()
	if !crowded {
		timer := time.NewTimer(time.Until(until))
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
		case <-l.stopping:
		}
		timer.Stop()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !crowded {
		l.lingering--
	}
	if ctx.Err() != nil || !r.isWoken() {
		return false
	}
	r.woken = make(chan struct{})
	return true
}

// hearWakes wakes the deliver jobs running here that other processes wake
// (outbox.Store.WakeJobsTx), until ctx ends. Without it, such a job would be
// woken once River records its run's end, up to a quarter of a second later.
func (r *Relay) hearWakes(ctx context.Context) {
	failing := false
	for ctx.Err() == nil {
		listener, err := r.store.ListenJobWakes(ctx)
		for err == nil {
			failing = false
			var ids []int64
			if ids, err = listener.Wait(ctx); err == nil {
				for _, id := range ids {
					r.here.wake(id)
				}
			}
		}
		if listener != nil {
			listener.Close()
		}
		if ctx.Err() == nil && !failing {
			failing = true
			r.config.Logger.WarnContext(ctx, "not hearing other processes' wakes of deliver jobs: an ordered hook's next delivery may wait up to a quarter of a second longer until they are heard again",
				"error", err)
		}
		sleep(ctx, time.Second)
	}
}
