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
	return honourRetryAfter(jitter(scheduleWait(schedule, attempt)), retryAfter)
}

// scheduleWait is the schedule's wait after failed attempt number attempt
// (from 1); past the schedule, its last.
func scheduleWait(schedule []time.Duration, attempt int) time.Duration {
	return schedule[min(max(attempt, 1), len(schedule))-1]
}

// jitter spreads d by ±20 %.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) //nolint:gosec // jitter needs no crypto
}

// honourRetryAfter is delay, or the receiver's Retry-After within [delay,
// 2×delay].
func honourRetryAfter(delay, retryAfter time.Duration) time.Duration {
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
