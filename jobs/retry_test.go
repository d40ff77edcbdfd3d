package jobs

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{10 * time.Second, time.Minute}

	for range 1000 {
		d := retryDelay(schedule, 1, 0)
		require.GreaterOrEqual(t, d, 8*time.Second)
		require.LessOrEqual(t, d, 12*time.Second)

		d = retryDelay(schedule, 5, 0) // past the schedule: its last entry
		require.GreaterOrEqual(t, d, 48*time.Second)
		require.LessOrEqual(t, d, 72*time.Second)

		// Retry-After is honoured within [delay, 2×delay].
		d = retryDelay(schedule, 1, time.Second)
		require.GreaterOrEqual(t, d, 8*time.Second, "Retry-After cannot speed retries up")
		d = retryDelay(schedule, 1, 15*time.Second)
		require.Equal(t, 15*time.Second, d)
		d = retryDelay(schedule, 1, time.Hour)
		require.LessOrEqual(t, d, 24*time.Second, "Retry-After cannot park a delivery")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	require.Equal(t, 120*time.Second, parseRetryAfter("120", now))
	require.Equal(t, 30*time.Second, parseRetryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now))
	for _, ignored := range []string{"", "-5", "0", "soon", now.Add(-time.Hour).Format(http.TimeFormat)} {
		require.Zero(t, parseRetryAfter(ignored, now), ignored)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, seed := range []string{"120", "0", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "9999999999999999999", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		d := parseRetryAfter(value, time.Now())
		require.GreaterOrEqual(t, d, time.Duration(0))
	})
}

func TestParseRetrySchedule(t *testing.T) {
	t.Parallel()
	schedule, err := ParseRetrySchedule("5s, 5m,2h")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{5 * time.Second, 5 * time.Minute, 2 * time.Hour}, schedule)

	for _, bad := range []string{"", "5s,,5m", "5", "-5s", "0s", "soon"} {
		_, err := ParseRetrySchedule(bad)
		require.ErrorContains(t, err, "invalid retry schedule", bad)
	}
}
