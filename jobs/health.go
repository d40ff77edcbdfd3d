package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// health logs a hook's change from answering to failing and back, as this
// process sees its requests: a receiver's outage shows in the log, not only
// in the metrics. A hook that keeps failing is logged failing once per
// healthLogEvery; the line saying it answers again follows each one, with
// how long it failed and how many attempts did.
type health struct {
	logger *slog.Logger
	mu     sync.Mutex
	hooks  map[string]*hookHealth
}

// healthLogEvery bounds the failing lines of a hook that flaps.
const healthLogEvery = 5 * time.Minute

type hookHealth struct {
	failingSince time.Time // zero while answering
	failures     int       // attempts failed since failingSince
	logged       time.Time // when failing was last logged
	told         bool      // failing was logged since failingSince
}

func newHealth(logger *slog.Logger) *health {
	return &health{logger: logger, hooks: map[string]*hookHealth{}}
}

// note notes the attempts of one run or request to hookID: how many failed,
// whether any succeeded, and the last failure's reason.
func (h *health) note(ctx context.Context, hookID string, failed int, succeeded bool, reason string) {
	if failed == 0 && !succeeded {
		return
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	state := h.hooks[hookID]
	switch {
	case state == nil && succeeded:
		return
	case state == nil:
		state = &hookHealth{}
		h.hooks[hookID] = state
	}
	if succeeded {
		if state.told {
			h.logger.InfoContext(ctx, "hook answers again", "hook_id", hookID,
				"failing_for", now.Sub(state.failingSince).Round(time.Millisecond).String(), "failed_attempts", state.failures+failed)
		}
		if now.Sub(state.logged) >= healthLogEvery {
			delete(h.hooks, hookID) // nothing left to bound
		} else {
			*state = hookHealth{logged: state.logged}
		}
		return
	}
	if state.failingSince.IsZero() {
		state.failingSince = now
	}
	state.failures += failed
	if now.Sub(state.logged) >= healthLogEvery {
		state.logged, state.told = now, true
		h.logger.WarnContext(ctx, "hook failing: its deliveries wait for their retries", "hook_id", hookID,
			"failing_since", state.failingSince.UTC().Format(time.RFC3339), "failed_attempts", state.failures, "last_failure", reason)
	}
}
