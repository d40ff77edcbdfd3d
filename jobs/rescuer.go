package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// The rescuer gives hookrelay's jobs stranded by a dead process back to the
// queue: a job still running RescueAfter after it started cannot belong to a
// live process (its timeout has cancelled it and it has recorded what it did),
// so it is made available again at once, to whichever process fetches it
// first, a survivor or the dead one restarted. Every process looks every
// rescueInterval, so a killed process's work resumes within RescueAfter plus
// rescueInterval of the kill. River's own rescuer looks every 30 s and
// schedules the job on its retry policy, which for a deliver job can mean
// hours; it stays as the backstop.
const rescueInterval = 5 * time.Second

// rescueBatchMax bounds the jobs one look rescues; the next look takes more.
const rescueBatchMax = 1000

// rescuedKinds are the jobs the rescuer may touch: an application's own jobs,
// on a River client shared with it, keep River's rescue.
var rescuedKinds = []string{DeliverArgs{}.Kind(), FanOutArgs{}.Kind(), RetentionArgs{}.Kind()} //nolint:gochecknoglobals

func (s *Relay) rescue(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(rescueInterval):
		}
		n, err := s.rescueOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.config.Logger.WarnContext(ctx, "rescuing stranded jobs failed", "error", err)
		case n > 0:
			s.metrics.rescued.Add(float64(n))
			s.config.Logger.InfoContext(ctx, "rescued jobs of a dead process", "jobs", n)
		}
	}
}

// rescueOnce makes available again the jobs of hookrelay's kinds that have
// been running for longer than RescueAfter, and returns how many.
func (s *Relay) rescueOnce(ctx context.Context) (int, error) {
	client := s.Client()
	exec := client.Driver().GetExecutor()
	horizon := time.Now().Add(-s.config.RescueAfter)
	stuck, err := exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{
		Max:          rescueBatchMax,
		Schema:       client.Schema(),
		StuckHorizon: horizon,
	})
	if err != nil {
		return 0, fmt.Errorf("list stranded jobs: %w", err)
	}
	now := time.Now().UTC()
	params := &riverdriver.JobRescueManyParams{Schema: client.Schema(), StuckHorizon: horizon}
	for _, job := range stuck {
		if !slices.Contains(rescuedKinds, job.Kind) {
			continue
		}
		reason, err := json.Marshal(rivertype.AttemptError{
			At:      now,
			Attempt: job.Attempt,
			Error:   fmt.Sprintf("rescued by hookrelay: still running %s after it started, so its process died", s.config.RescueAfter),
		})
		if err != nil {
			return 0, err
		}
		params.ID = append(params.ID, job.ID)
		params.Error = append(params.Error, reason)
		params.FinalizedAt = append(params.FinalizedAt, nil)
		params.ScheduledAt = append(params.ScheduledAt, now)
		params.State = append(params.State, string(rivertype.JobStateAvailable))
	}
	if len(params.ID) == 0 {
		return 0, nil
	}
	// Only jobs still running and still past the horizon change: two
	// processes rescuing at once rescue each job once.
	if _, err := exec.JobRescueMany(ctx, params); err != nil {
		return 0, fmt.Errorf("rescue %d stranded jobs: %w", len(params.ID), err)
	}
	return len(params.ID), nil
}
