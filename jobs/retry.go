package jobs

import (
	"math/rand/v2"
	"time"
)

// retryDelay returns the wait after failed attempt number attempt (from 1):
// the schedule's entry with ±20 % jitter, and a receiver's Retry-After
// honoured within [delay, 2×delay], so a receiver can slow hookrelay down but
// neither speed it up nor park a delivery indefinitely.
func retryDelay(schedule []time.Duration, attempt int, retryAfter time.Duration) time.Duration {
	base := schedule[min(max(attempt, 1), len(schedule))-1]
	delay := time.Duration(float64(base) * (0.8 + 0.4*rand.Float64())) //nolint:gosec // jitter needs no crypto
	if retryAfter > 0 {
		delay = min(max(retryAfter, delay), 2*delay)
	}
	return delay
}

// Control jobs (fan-out, retention, reconcile) are retried a few times, a
// second or so apart; each runs again on its own soon anyway.
const controlMaxAttempts = 3

func controlRetry(attempt int) time.Time {
	return time.Now().Add(time.Duration(attempt*attempt) * time.Second)
}
