package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// The rescuer gives hookrelay's jobs stranded by a dead process back to the
// queue, at once, to whichever process fetches them first, a survivor or the
// dead one restarted: each is cancelled and replaced by a new job with its
// args and metadata (see Relay.replace). Every process looks every rescueInterval, and reads
// the running jobs when it found a process dead, or every backstopInterval:
//   - for processes whose lock can be taken (see liveness.go) at a look and
//     at one at least confirmAfter earlier, by any process (the registry
//     keeps when a process was first found gone): they are dead, so their
//     running jobs are replaced and their jobs waiting on requests
//     they had in flight are woken, at every look until they are forgotten,
//     deadGrace after they were found gone. A process that merely lost its
//     lock's connection has stopped its work by then. A killed process's
//     work thus resumes within confirmAfter, two looks and a fetch;
//   - for jobs still running RescueAfter after they started, whoever runs
//     them: the backstop for a process that is alive but cut off, whose lock
//     Postgres has not released (a job of a live process has ended by then:
//     its timeout cancelled it and it recorded what it did);
//   - at its first look, for jobs running under its own River client ID that
//     it did not start: a predecessor's, when the application gives its
//     client a fixed ID.
//
// River's own rescuer looks every 30 s and schedules the job on its retry
// policy, which for a deliver job can mean hours; it stays as the backstop of
// last resort.
const (
	rescueInterval   = time.Second
	backstopInterval = 5 * time.Second
	// confirmAfter is how long a process must have been found gone before
	// it counts as dead: one whose lock's connection the server closed
	// knows it at once and stops its work well within it.
	confirmAfter = 500 * time.Millisecond
	// deadGrace is how long a dead process's jobs are still looked for: a
	// statement that its backend was running when it died (a fetch that
	// marks jobs running, the snooze of a job whose requests it had in
	// flight) commits once it ends, which on a busy machine can be seconds
	// after the lock was released.
	deadGrace = 30 * time.Second
)

// rescueBatchMax bounds the jobs one look rescues; the next look takes more.
const rescueBatchMax = 1000

// rescuedKinds are the jobs the rescuer may touch: an application's own jobs,
// on a River client shared with it, keep River's rescue.
var rescuedKinds = []string{DeliverArgs{}.Kind(), FanOutArgs{}.Kind(), RetentionArgs{}.Kind(), ReconcileArgs{}.Kind()} //nolint:gochecknoglobals

func (r *Relay) rescue(ctx context.Context) {
	var lastScan time.Time
	for {
		n, err := r.rescueOnce(ctx, &lastScan)
		switch {
		case err != nil && ctx.Err() == nil:
			r.config.Logger.WarnContext(ctx, "rescuing stranded jobs failed", "error", err)
		case n > 0:
			r.metrics.rescued.Add(float64(n))
			r.config.Logger.InfoContext(ctx, "rescued jobs of a dead process", "jobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(rescueInterval):
		}
	}
}

// rescueOnce replaces the jobs of hookrelay's kinds that dead processes left
// running, wakes those waiting on their requests, and
// returns how many jobs it rescued.
func (r *Relay) rescueOnce(ctx context.Context, lastScan *time.Time) (int, error) {
	client := r.Client()
	self := client.ID()
	dead, err := r.store.DeadProcesses(ctx, self, confirmAfter)
	if err != nil {
		return 0, err
	}

	now := time.Now()
	if len(dead) == 0 && now.Sub(*lastScan) < backstopInterval {
		return 0, nil
	}
	*lastScan = now
	exec := client.Driver().GetExecutor()
	running, err := exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{Max: rescueBatchMax, Schema: client.Schema(), StuckHorizon: now})
	if err != nil {
		return 0, fmt.Errorf("list running jobs: %w", err)
	}
	stranded := map[int64]strandedJob{}
	for _, job := range running {
		if !slices.Contains(rescuedKinds, job.Kind) || job.AttemptedAt == nil {
			continue
		}
		runner := lastRunner(job)
		var reason string
		goneSince, isDead := dead[runner]
		switch {
		// Only jobs it started before it was found gone: a process that
		// takes its lock again under the same client ID (it had lost its
		// connection) is alive, and so are the jobs it starts.
		case isDead && job.AttemptedAt.Before(goneSince):
			reason = fmt.Sprintf("its process (River client %s) is gone", runner)
		case runner == self && job.AttemptedAt.Before(r.startedAt):
			reason = fmt.Sprintf("running under this process's client ID %s since before it started", self)
		case job.AttemptedAt.Before(now.Add(-r.config.RescueAfter)):
			reason = fmt.Sprintf("still running %s after it started, so its process died or was cut off", r.config.RescueAfter)
		default:
			continue
		}
		stranded[job.ID] = strandedJob{attemptedAt: *job.AttemptedAt,
			reason: fmt.Sprintf("%s (River client %s at %s): %s", replacedMark, self, now.UTC().Format(time.RFC3339Nano), reason)}
	}
	rescued := 0
	if len(stranded) > 0 {
		if rescued, err = r.replace(ctx, stranded, now); err != nil {
			return 0, err
		}
	}
	if len(dead) > 0 {
		if err := r.wakeLeased(ctx, dead); err != nil {
			return rescued, err
		}
		if err := r.store.ForgetDeadProcesses(ctx, slices.Collect(maps.Keys(dead)), deadGrace); err != nil {
			return rescued, err
		}
	}
	return rescued, nil
}

// replacedMark begins the error the rescuer records on each job it replaces.
// Such a job never works again (see ownedWork), lest River's JobRetry (a
// wake that raced the rescue, an operator's retry in River's UI) run it
// beside its replacement, which would send its deliveries twice at once.
// A storage format: changing it would let older replaced jobs run again.
const replacedMark = "replaced by hookrelay's rescuer"

// strandedJob is a running job the rescuer replaces: when the run it
// replaces started, as it was listed, and why.
type strandedJob struct {
	attemptedAt time.Time
	reason      string
}

// replace cancels the stranded jobs still in the run they were listed in,
// and inserts in their place, in the same transaction, new jobs with their
// args and metadata (the last run's report: its leases); it returns how many
// it replaced. One snapshot reads and cancels them: a job whose run ended
// meanwhile, and may run again in a live process, or that another look
// rescued, is left alone. A rescued job is not made available again
// itself: its process, if only cut off from Postgres, may still record the
// end of its run once it reaches Postgres again, and River would apply that
// to the job, run again meanwhile by another process. Its replacement is
// another job, which nothing of the old run can touch.
func (r *Relay) replace(ctx context.Context, stranded map[int64]strandedJob, now time.Time) (int, error) {
	client := r.Client()
	replaced := 0
	err := inSnapshot(ctx, r.store.Pool(), func(tx pgx.Tx) error {
		exec := client.Driver().UnwrapExecutor(tx)
		jobs, err := exec.JobGetByIDMany(ctx, &riverdriver.JobGetByIDManyParams{ID: slices.Collect(maps.Keys(stranded)), Schema: client.Schema()})
		if err != nil {
			return fmt.Errorf("read %d stranded jobs: %w", len(stranded), err)
		}
		params := &riverdriver.JobRescueManyParams{Schema: client.Schema(), StuckHorizon: now}
		var replacements []river.InsertManyParams
		for _, job := range jobs {
			listed := stranded[job.ID]
			if job.State != rivertype.JobStateRunning || job.AttemptedAt == nil || !job.AttemptedAt.Equal(listed.attemptedAt) {
				continue
			}
			encoded, err := json.Marshal(rivertype.AttemptError{At: now.UTC(), Attempt: job.Attempt, Error: listed.reason})
			if err != nil {
				return err
			}
			args, err := rescuedArgs(job)
			if err != nil {
				return err
			}
			params.ID = append(params.ID, job.ID)
			params.Error = append(params.Error, encoded)
			params.FinalizedAt = append(params.FinalizedAt, &now)
			params.ScheduledAt = append(params.ScheduledAt, now.UTC())
			params.State = append(params.State, string(rivertype.JobStateCancelled))
			replacements = append(replacements, river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{
				Queue: job.Queue, Priority: job.Priority, MaxAttempts: job.MaxAttempts, Metadata: job.Metadata}})
		}
		replaced = len(params.ID)
		if replaced == 0 {
			return nil
		}
		if _, err := exec.JobRescueMany(ctx, params); err != nil {
			return fmt.Errorf("rescue %d stranded jobs: %w", replaced, err)
		}
		_, err = client.InsertManyTx(ctx, tx, replacements)
		return wrap(err, "insert the jobs replacing %d rescued ones", replaced)
	})
	return replaced, err
}

// wasReplaced reports whether the rescuer replaced the job.
func wasReplaced(job *rivertype.JobRow) bool {
	return slices.ContainsFunc(job.Errors, func(e rivertype.AttemptError) bool { return strings.HasPrefix(e.Error, replacedMark) })
}

// inSnapshot runs fn in a repeatable-read transaction, again while it fails
// because a row it read changed before it committed (a serialization
// failure): what fn decides from its reads still holds when it commits.
func inSnapshot(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, fn)
		var pgErr *pgconn.PgError
		if attempt < snapshotAttempts && errors.As(err, &pgErr) && pgErr.Code == "40001" { // serialization_failure
			continue
		}
		return err
	}
}

// snapshotAttempts bounds inSnapshot's attempts: rows that keep changing
// are left to the next look.
const snapshotAttempts = 3

// rescuedArgs decodes a rescued job's args.
func rescuedArgs(job *rivertype.JobRow) (river.JobArgs, error) {
	var args river.JobArgs
	switch job.Kind {
	case DeliverArgs{}.Kind():
		args = &DeliverArgs{}
	case FanOutArgs{}.Kind():
		args = &FanOutArgs{}
	case RetentionArgs{}.Kind():
		args = &RetentionArgs{}
	case ReconcileArgs{}.Kind():
		args = &ReconcileArgs{}
	default:
		return nil, fmt.Errorf("rescue job %d: unknown kind %s", job.ID, job.Kind) //nolint:err113
	}
	if err := json.Unmarshal(job.EncodedArgs, args); err != nil {
		return nil, fmt.Errorf("decode the args of job %d: %w", job.ID, err)
	}
	return args, nil
}

// wakeLeased makes available the deliver jobs that wait on requests the dead
// processes had in flight, so that their deliveries go again now (see
// deliverWorker.Work) rather than when the leases end.
func (r *Relay) wakeLeased(ctx context.Context, dead map[string]time.Time) error {
	client := r.Client()
	params := river.NewJobListParams().Kinds(DeliverArgs{}.Kind()).States(rivertype.JobStateScheduled).
		Where("metadata->'output'->'leases' @> ANY(@leases::jsonb[])", river.NamedArgs{"leases": leaseMatchers(dead)}).First(rescueBatchMax)
	res, err := client.JobList(ctx, params)
	if err != nil {
		return fmt.Errorf("list jobs waiting on gone processes: %w", err)
	}
	for _, job := range res.Jobs {
		if _, err := client.JobRetry(ctx, job.ID); err != nil {
			return fmt.Errorf("wake job %d: %w", job.ID, err)
		}
	}
	return nil
}

// leaseMatchers are jsonb values that a job's leases contain when one of
// them is a dead process's.
func leaseMatchers(dead map[string]time.Time) []string {
	var matchers []string
	for id := range dead {
		encoded, _ := json.Marshal([]map[string]string{{"by": id}})
		matchers = append(matchers, string(encoded))
	}
	return matchers
}

// lastRunner is the River client that ran the job last.
func lastRunner(job *rivertype.JobRow) string {
	if len(job.AttemptedBy) == 0 {
		return ""
	}
	return job.AttemptedBy[len(job.AttemptedBy)-1]
}
