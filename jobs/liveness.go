package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// Liveness: every process holds its process lock (outbox.ProcessLock) while
// it works hookrelay's jobs. Postgres releases the lock the moment the
// process dies, so survivors give its work back within seconds (see
// rescuer.go) instead of waiting for RescueAfter. A process that loses its
// lock while alive (its connection was cut or its backend terminated) stops
// at once everything it was doing: it cancels its running jobs and its
// requests in flight, and its jobs step aside, until it holds the lock again.
// It learns of the loss before any other process can take the lock (see
// outbox.ProcessLock), so no job runs twice beside itself.

// notOwnedWait is how long a job fetched while its process does not hold its
// lock waits, using no attempt.
const notOwnedWait = time.Second

// relockWait is the wait between attempts to take the lock again.
const relockWait = time.Second

// owner tells whether the process holds its lock, and gives the context of
// what it does under it.
type owner struct {
	base context.Context // cancelled when the relay stops for good

	mu      sync.Mutex
	held    context.Context // done when the lock is lost
	cancel  context.CancelFunc
	retired bool // a newer release migrated the schema: never held again
}

func newOwner(base context.Context) *owner {
	held, cancel := context.WithCancel(base)
	cancel() // not held until acquired
	return &owner{base: base, held: held, cancel: cancel}
}

// context returns the context of work under the lock, and whether the lock
// is held.
func (o *owner) context() (context.Context, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held, o.held.Err() == nil
}

func (o *owner) acquired() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.retired {
		o.held, o.cancel = context.WithCancel(o.base)
	}
}

// retire stops the work for good.
func (o *owner) retire() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retired = true
	o.cancel()
}

func (o *owner) lost() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cancel()
}

// ownedWork is the middleware of hookrelay's workers: a job works only while
// its process holds its lock, and stops when the lock is lost. A job the
// rescuer replaced, made available again, ends at once.
type ownedWork struct {
	river.MiddlewareDefaults
	owner *owner
}

func (m *ownedWork) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if wasReplaced(job) {
		return nil // its replacement does its work
	}
	held, ok := m.owner.context()
	if !ok {
		return river.JobSnooze(notOwnedWait)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(held, cancel)()
	return doInner(ctx)
}

// holdLock keeps the process lock until ctx ends: it watches the lock's
// connection, and when it fails, stops the process's work and takes the lock
// again.
func (r *Relay) holdLock(ctx context.Context, lock *outbox.ProcessLock, clientID string) {
	logger := r.config.Logger
	for {
		err := lock.Watch(ctx)
		if err != nil {
			r.owner.lost()
		}
		lock.Close(context.WithoutCancel(ctx))
		if err == nil {
			return
		}
		logger.WarnContext(ctx, "lost the process lock: stopped this process's jobs and requests until it is taken again", "error", err)
		for lock = nil; lock == nil; {
			if !sleep(ctx, relockWait) {
				return
			}
			if lock, err = r.store.TakeProcessLock(ctx, clientID); err != nil {
				logger.WarnContext(ctx, "taking the process lock again failed", "error", err)
			}
		}
		r.owner.acquired()
		logger.InfoContext(ctx, "took the process lock again: working")
	}
}

// schemaCheckInterval is how often a working process checks that no later
// release migrated its schema. One that did may write what this release
// would mistreat (a job's format, the meaning of a column): the process then
// stops working for good, as when it loses its lock, and says so through
// Relay.Superseded, on which serve exits. A rolling upgrade thus never runs
// two releases' workers side by side for more than schemaCheckInterval.
const schemaCheckInterval = 5 * time.Second

// watchSchema retires the relay once its schema is newer than it knows.
func (r *Relay) watchSchema(ctx context.Context) {
	for sleep(ctx, schemaCheckInterval) {
		err := r.store.CheckMigrated(ctx)
		if !errors.Is(err, outbox.ErrSchemaNewer) {
			continue // a failed look is tried again; the lock watches the connection
		}
		r.owner.retire()
		r.config.Logger.ErrorContext(ctx, "a newer release migrated the schema: this process stopped working its jobs", "error", err)
		r.superseded <- err
		return
	}
}
