package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// The poller looks for unclaimed events every PollInterval while events come,
// and sleeps on LISTEN once none came for PollerSleepAfter: an idle process
// then costs the database almost nothing, and the first event after a quiet
// spell wakes it at once (see schema/003_publish.up.sql). Asleep, it
// still looks every pollerSleepCheck, for events of a moment when no poller
// held the doorbell (its holder died while others slept).
const (
	PollerSleepAfter = time.Second
	pollerSleepCheck = 5 * time.Second
)

// fanOutStaleAfter is how long the poller waits on its fan-out job before
// queueing another beside it: longer than a job lingers, short enough that a
// job stranded by a killed process does not stall the outbox.
const fanOutStaleAfter = fanOutLingerMax + time.Second

// poll queues a fan-out job whenever events wait. Polling, rather than a
// NOTIFY from every publish, keeps the write path to one INSERT under load
// (NOTIFY serialises committing transactions) and treats Go and SQL
// publishers alike.
func (s *Relay) poll(ctx context.Context) {
	var listener *outbox.OutboxListener
	defer func() {
		if listener != nil {
			listener.Close()
		}
	}()
	wait := s.config.PollInterval
	lastFound := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = s.config.PollInterval
		if s.fanOutRunning.Load() > 0 {
			lastFound = time.Now()
			continue
		}
		found, err := s.queueFanOut(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.config.Logger.WarnContext(ctx, "outbox poll failed", "error", err)
			}
			wait = time.Second
		case found:
			lastFound = time.Now()
		case time.Since(lastFound) >= PollerSleepAfter:
			listener = s.sleep(ctx, listener)
			lastFound = time.Now()
			wait = 0
		}
	}
}

// sleep waits until an event is published or ctx ends, and returns the
// listener to keep for the next sleep (nil if it broke: the poller then keeps
// polling until its next sleep opens another). It returns at once while a
// publishing transaction is in flight.
func (s *Relay) sleep(ctx context.Context, listener *outbox.OutboxListener) *outbox.OutboxListener {
	// A kept listener whose connection broke while the poller was awake (a
	// restart, maybe long ago) is replaced: its error is old news, a fresh
	// connection's is not.
	if listener != nil && listener.Drain(ctx) != nil {
		listener.Close()
		listener = nil
	}
	var err error
	if listener == nil {
		if listener, err = s.store.ListenOutbox(ctx); err != nil {
			s.logSleepError(ctx, err)
			return nil
		}
	}
	for {
		rung, err := listener.Doorbell(ctx)
		if err == nil && rung {
			var waiting bool
			// Every event committed before the doorbell was taken is visible.
			if waiting, err = s.store.HasUnclaimedEvents(ctx); err == nil && !waiting {
				waitCtx, cancel := context.WithTimeout(ctx, pollerSleepCheck)
				err = listener.Wait(waitCtx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					continue // look again, and take the doorbell if a dead sleeper left it
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			s.logSleepError(ctx, err)
			listener.Close()
			return nil
		}
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = listener.ReleaseDoorbell(releaseCtx)
		cancel()
		if err != nil {
			s.logSleepError(ctx, err)
			listener.Close()
			return nil
		}
		return listener
	}
}

func (s *Relay) logSleepError(ctx context.Context, err error) {
	if ctx.Err() == nil {
		s.config.Logger.WarnContext(ctx, "outbox poller cannot sleep; polling on", "error", err)
	}
}

// queueFanOut queues a fan-out job when events wait, unless this process's
// previous one is still queued or running and recent, and reports whether
// events wait.
func (s *Relay) queueFanOut(ctx context.Context) (bool, error) {
	waiting, err := s.store.HasUnclaimedEvents(ctx)
	if err != nil || !waiting {
		return false, err
	}
	if last := s.lastFanOut; last != nil && time.Since(last.CreatedAt) < fanOutStaleAfter {
		job, err := s.Client().JobGet(ctx, last.ID)
		if err != nil && !errors.Is(err, river.ErrNotFound) {
			return true, fmt.Errorf("get fan-out job: %w", err)
		}
		if err == nil && job.FinalizedAt == nil && job.State != rivertype.JobStateRetryable {
			return true, nil // still queued or running
		}
	}
	res, err := s.Client().Insert(ctx, FanOutArgs{}, nil)
	if err != nil {
		return true, fmt.Errorf("insert fan-out job: %w", err)
	}
	s.lastFanOut = res.Job
	return true, nil
}
