package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hookrelay/hookrelay/outbox"
)

// RateResult is the rate-limit phase: a backlog drained to a hook limited to
// LimitPerS beside the environment's unlimited hooks, then the Go latency
// phase again with every hook limited far above what it is offered.
type RateResult struct {
	LimitPerS int `json:"limit_per_s"`
	Events    int `json:"events"`
	// DrainedPerS is the limited hook's rate from its first arrival to its
	// last; BusiestSecond the most arrivals in any second.
	DrainedPerS   float64 `json:"drained_per_s"`
	BusiestSecond int     `json:"busiest_second"`
	// UnlimitedSeconds is how long the unlimited hooks took to receive the
	// backlog, and LimitedSeconds the limited one.
	UnlimitedSeconds float64 `json:"unlimited_seconds"`
	LimitedSeconds   float64 `json:"limited_seconds"`
	// BelowLimit is the latency with every hook limited to 10 times its
	// offered rate; its p99 over the Go phase's is BelowLimitRatio.
	BelowLimit      Percentiles `json:"below_limit_latency_ms"`
	BelowLimitRatio float64     `json:"below_limit_p99_ratio"`
}

// rateLimitPerS is the limited hook's rate in the drain.
const rateLimitPerS = 50

// rateLimited runs the rate-limit phase with a backlog of events.
func (e *environment) rateLimited(ctx context.Context, events, rate int, duration time.Duration) (*RateResult, error) {
	res := &RateResult{LimitPerS: rateLimitPerS, Events: events}
	hook, err := e.store.CreateHook(ctx, &outbox.HookParams{URL: e.rec.URL("/limited"), Events: []string{"*"}, RateLimit: fmt.Sprintf("%d/s", rateLimitPerS)})
	if err != nil {
		return nil, err
	}
	e.rec.AddHook(hook)
	e.counter.tracking.Store(true)
	e.counter.takeArrivals()
	_, err = e.pool.Exec(ctx, fmt.Sprintf("SELECT %s.publish('User.Created', '{}') FROM generate_series(1, $1)", benchSchema), events)
	start := time.Now()
	var limited, unlimited []time.Time
	if err == nil {
		err = waitUntil(ctx, time.Duration(events/rateLimitPerS)*2*time.Second+time.Minute, func() bool {
			for _, a := range e.counter.takeArrivals() {
				if a.HookID == hook.ID {
					limited = append(limited, a.At)
				} else {
					unlimited = append(unlimited, a.At)
				}
			}
			return len(limited) >= events && len(unlimited) >= events*e.hooks
		})
	}
	e.counter.tracking.Store(false)
	if deleteErr := e.store.DeleteHook(context.WithoutCancel(ctx), hook.ID); err == nil {
		err = deleteErr
	}
	if err != nil {
		return nil, fmt.Errorf("drain to a limited hook: %d of %d arrived: %w", len(limited), events, err)
	}
	slices.SortFunc(limited, time.Time.Compare)
	res.DrainedPerS = float64(len(limited)-1) / limited[len(limited)-1].Sub(limited[0]).Seconds()
	for i, j := 0, 0; j < len(limited); j++ {
		for limited[j].Sub(limited[i]) >= time.Second {
			i++
		}
		res.BusiestSecond = max(res.BusiestSecond, j-i+1)
	}
	res.LimitedSeconds = limited[len(limited)-1].Sub(start).Seconds()
	res.UnlimitedSeconds = slices.MaxFunc(unlimited, time.Time.Compare).Sub(start).Seconds()

	// Below the limit: every hook limited to 10 times what it is offered.
	hooks, err := e.store.ListHooks(ctx)
	if err != nil {
		return nil, err
	}
	setLimit := func(limit string) error {
		for _, h := range hooks {
			if _, err := e.store.UpdateHook(ctx, h.ID, &outbox.HookUpdate{RateLimit: &limit}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := setLimit(fmt.Sprintf("%d/s", 10*max(rate/e.hooks, 1))); err != nil {
		return nil, err
	}
	res.BelowLimit, _, err = e.latency(ctx, rate, duration, false)
	if resetErr := setLimit(""); err == nil {
		err = resetErr
	}
	return res, err
}
