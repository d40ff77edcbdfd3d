package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
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
	params := &riverdriver.JobRescueManyParams{Schema: client.Schema(), StuckHorizon: now}
	reasons := map[int64]string{}
	for _, job := range running {
		if !slices.Contains(rescuedKinds, job.Kind) {
			continue
		}
		runner := lastRunner(job)
		var reason string
		goneSince, isDead := dead[runner]
		switch {
		// Only jobs it started before it was found gone: a process that
		// takes its lock again under the same client ID (it had lost its
		// connection) is alive, and so are the jobs it starts.
		case isDead && job.AttemptedAt != nil && job.AttemptedAt.Before(goneSince):
			reason = fmt.Sprintf("its process (River client %s) is gone", runner)
		case runner == self && job.AttemptedAt != nil && job.AttemptedAt.Before(r.startedAt):
			reason = fmt.Sprintf("running under this process's client ID %s since before it started", self)
		case job.AttemptedAt != nil && job.AttemptedAt.Before(now.Add(-r.config.RescueAfter)):
			reason = fmt.Sprintf("still running %s after it started, so its process died or was cut off", r.config.RescueAfter)
		default:
			continue
		}
		// Unique to this look, so that it tells which jobs this look
		// replaced.
		reason = fmt.Sprintf("replaced by hookrelay's rescuer (River client %s at %s): %s", self, now.UTC().Format(time.RFC3339Nano), reason)
		encoded, err := json.Marshal(rivertype.AttemptError{At: now.UTC(), Attempt: job.Attempt, Error: reason})
		if err != nil {
			return 0, err
		}
		reasons[job.ID] = reason
		params.ID = append(params.ID, job.ID)
		params.Error = append(params.Error, encoded)
		params.FinalizedAt = append(params.FinalizedAt, &now)
		params.ScheduledAt = append(params.ScheduledAt, now.UTC())
		params.State = append(params.State, string(rivertype.JobStateCancelled))
	}
	if len(params.ID) > 0 {
		if err := r.replace(ctx, params, reasons); err != nil {
			return 0, err
		}
	}
	if len(dead) > 0 {
		if err := r.wakeLeased(ctx, dead); err != nil {
			return len(params.ID), err
		}
		if err := r.store.ForgetDeadProcesses(ctx, slices.Collect(maps.Keys(dead)), deadGrace); err != nil {
			return len(params.ID), err
		}
	}
	return len(params.ID), nil
}

// replace cancels the rescued jobs that are still running and started before
// this look (two processes rescuing at once rescue each job once), and
// inserts in their place, in the same transaction, new jobs with their args
// and metadata (the last run's report: its leases). A rescued job is not
// made available again itself: its process, if only cut off from Postgres,
// may still record the end of its run once it reaches Postgres again, and
// River would apply that to the job, run again meanwhile by another process.
// Its replacement is another job, which nothing of the old run can touch.
func (r *Relay) replace(ctx context.Context, params *riverdriver.JobRescueManyParams, reasons map[int64]string) error {
	client := r.Client()
	return pgx.BeginFunc(ctx, r.store.Pool(), func(tx pgx.Tx) error {
		exec := client.Driver().UnwrapExecutor(tx)
		if _, err := exec.JobRescueMany(ctx, params); err != nil {
			return fmt.Errorf("rescue %d stranded jobs: %w", len(params.ID), err)
		}
		jobs, err := exec.JobGetByIDMany(ctx, &riverdriver.JobGetByIDManyParams{ID: params.ID, Schema: client.Schema()})
		if err != nil {
			return fmt.Errorf("read rescued jobs: %w", err)
		}
		var replacements []river.InsertManyParams
		for _, job := range jobs {
			if job.State != rivertype.JobStateCancelled || len(job.Errors) == 0 || job.Errors[len(job.Errors)-1].Error != reasons[job.ID] {
				continue // another look rescued it, or it ended meanwhile
			}
			args, err := rescuedArgs(job)
			if err != nil {
				return err
			}
			replacements = append(replacements, river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{
				Queue: job.Queue, Priority: job.Priority, MaxAttempts: job.MaxAttempts, Metadata: job.Metadata}})
		}
		if len(replacements) == 0 {
			return nil
		}
		_, err = client.InsertManyTx(ctx, tx, replacements)
		return wrap(err, "insert the jobs replacing %d rescued ones", len(replacements))
	})
}

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
