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
