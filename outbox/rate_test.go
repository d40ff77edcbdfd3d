package outbox

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	for rate, want := range map[string]struct {
		count  int
		period time.Duration
	}{
		"":         {},
		"50/s":     {50, time.Second},
		"600/m":    {600, time.Minute},
		"1/min":    {1, time.Minute},
		"20 / sec": {20, time.Second},
	} {
		count, period, err := ParseRate(rate)
		require.NoError(t, err, rate)
		require.Equal(t, want.count, count, rate)
		require.Equal(t, want.period, period, rate)
	}
	for _, rate := range []string{"50", "0/s", "-1/s", "50/h", "x/s", "100001/s", "50/s/s"} {
		_, _, err := ParseRate(rate)
		require.ErrorContains(t, err, "write it as N/s or N/m", rate)
	}
	_, _, _, err := rateColumns("", 5)
	require.ErrorContains(t, err, "a burst needs a rate limit")
	_, _, _, err = rateColumns("5/s", -1)
	require.ErrorContains(t, err, "give 0 to")
	count, period, burst, err := rateColumns("600/m", 10)
	require.NoError(t, err)
	require.Equal(t, int32(600), *count)
	require.Equal(t, int32(60), *period)
	require.Equal(t, int32(10), burst)
	require.Equal(t, "600/m", formatRate(count, period))
}

// TestReservationEnd: a reservation that came back 50 ms after it was asked
// for has its requests due 50 ms late at the soonest, and ends where the next
// reservation may begin, reckoned from when it was asked for: its last
// requests, which would leave in the next one's time, do not leave.
func TestReservationEnd(t *testing.T) {
	t.Parallel()
	asked := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	r := &Reservation{Reserved: 5, Asked: asked, At: asked.Add(50 * time.Millisecond), Interval: 20 * time.Millisecond, Lead: 10 * time.Millisecond}
	require.Equal(t, asked.Add(60*time.Millisecond), r.Due(0))
	require.Equal(t, asked.Add(140*time.Millisecond), r.Due(4))
	require.Equal(t, asked.Add(110*time.Millisecond), r.End())
	require.True(t, r.Due(2).Before(r.End()))
	require.False(t, r.Due(3).Before(r.End()), "the fourth request would leave in the next reservation's time")
}
