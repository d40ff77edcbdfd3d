package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hookrelay/hookrelay/outbox"
)

// OrderResult is the ordering phase: a backlog of Events events of Subjects
// subjects, each subject's n-th event published before any one's n+1-th,
// drained to a hook ordered by subject beside the environment's hooks in no
// order, all at one receiver.
type OrderResult struct {
	Subjects int `json:"subjects"`
	Events   int `json:"events"`
	// OrderedSeconds and UnorderedSeconds are how long the ordered hook and
	// the others took to receive the backlog; Ratio is the ordered hook's
	// throughput over theirs.
	OrderedSeconds   float64 `json:"ordered_seconds"`
	UnorderedSeconds float64 `json:"unordered_seconds"`
	Ratio            float64 `json:"ratio"`
	// HandOff is the time, in ms, from an event's arrival at the ordered
	// hook (answered at once) to the next one's of its subject, for those
	// fanned out by then (by their fan-out's start).
	HandOff Percentiles `json:"hand_off_ms"`
}

// orderSubjects is the ordering phase's number of subjects, as the issue's
// goal counts them.
const orderSubjects = 1000

// ordered runs the ordering phase with a backlog of events.
func (e *environment) ordered(ctx context.Context, events int) (*OrderResult, error) {
	subjects := min(orderSubjects, events)
	res := &OrderResult{Subjects: subjects, Events: events / subjects * subjects}
	hook, err := e.store.CreateHook(ctx, &outbox.HookParams{URL: e.rec.URL("/ordered"), Events: []string{"*"}, Ordering: outbox.OrderingSubject})
	if err != nil {
		return nil, err
	}
	e.rec.AddHook(hook)
	e.counter.tracking.Store(true)
	e.counter.takeArrivals()
	// One statement writes the events in the order of i: by subject, the
	// order of the rounds.
	_, err = e.pool.Exec(ctx, fmt.Sprintf(`SELECT %s.publish('User.Data.Updated', '{}', '{}', NULL, 'user:' || (i %% $2))
		FROM generate_series(0, $1 - 1) i`, benchSchema), res.Events, subjects)
	start := time.Now()
	var ordered, unordered []time.Time
	orderedAt := map[string]time.Time{} // event ID → arrival at the ordered hook
	if err == nil {
		err = waitUntil(ctx, 5*time.Minute, func() bool {
			for _, a := range e.counter.takeArrivals() {
				if a.HookID == hook.ID {
					ordered = append(ordered, a.At)
					orderedAt[a.EventID] = a.At
				} else {
					unordered = append(unordered, a.At)
				}
			}
			return len(ordered) >= res.Events && len(unordered) >= res.Events*e.hooks
		})
	}
	e.counter.tracking.Store(false)
	if err == nil {
		res.HandOff, err = e.handOffs(ctx, hook.ID, orderedAt)
	}
	if deleteErr := e.store.DeleteHook(context.WithoutCancel(ctx), hook.ID); err == nil {
		err = deleteErr
	}
	if err != nil {
		return nil, fmt.Errorf("drain to an ordered hook: %d of %d arrived: %w", len(ordered), res.Events, err)
	}
	// The backlog's last arrival at each: a request sent again (at least
	// once) arrives after it, as may another hook's, and would count the
	// wait for its retry.
	slices.SortFunc(ordered, time.Time.Compare)
	slices.SortFunc(unordered, time.Time.Compare)
	res.OrderedSeconds = ordered[res.Events-1].Sub(start).Seconds()
	res.UnorderedSeconds = unordered[res.Events*e.hooks-1].Sub(start).Seconds()
	res.Ratio = res.UnorderedSeconds / res.OrderedSeconds
	return res, nil
}

// handOffs returns the hand-offs of the ordered phase's hook, whose arrivals
// by event ID are at.
func (e *environment) handOffs(ctx context.Context, hookID string, at map[string]time.Time) (Percentiles, error) {
	rows, err := e.pool.Query(ctx, fmt.Sprintf(`SELECT e.subject, d.event_id::text, d.created_at FROM %[1]s.deliveries d
		JOIN %[1]s.events e ON e.id = d.event_id WHERE d.hook_id = $1 ORDER BY e.subject, e.subject_seq`, benchSchema), hookID)
	if err != nil {
		return Percentiles{}, err
	}
	var ms []float64
	var subject, previous string // the last row's
	for rows.Next() {
		var eventSubject, eventID string
		var fannedOut time.Time
		if err := rows.Scan(&eventSubject, &eventID, &fannedOut); err != nil {
			return Percentiles{}, err
		}
		if before, ok := at[previous]; ok && eventSubject == subject && fannedOut.Before(before) {
			ms = append(ms, float64(at[eventID].Sub(before).Microseconds())/1000)
		}
		subject, previous = eventSubject, eventID
	}
	return percentiles(ms), rows.Err()
}
