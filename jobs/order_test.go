package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLocalRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// No linger in these tests ends by its time: a wake ends it, or it
	// does not start.
	never := time.Now().Add(time.Hour)

	t.Run("WakeEndsLinger", func(t *testing.T) {
		t.Parallel()
		runs := newLocalRuns(lingerShare)
		run := runs.begin(1)
		lingered := make(chan bool)
		go func() { lingered <- runs.linger(ctx, run, never) }()
		requireLingering(t, runs, 1)
		require.True(t, runs.wake(1))
		require.True(t, <-lingered)
		require.False(t, runs.end(1), "the wake was taken")
		require.False(t, runs.wake(1), "the run ended: the waker must wake it through River")
	})

	t.Run("WakeDuringRunIsKept", func(t *testing.T) {
		t.Parallel()
		runs := newLocalRuns(lingerShare)
		run := runs.begin(1)
		require.True(t, runs.wake(1))
		require.True(t, runs.wake(1), "a second wake before the first is taken is the same")
		require.True(t, runs.linger(ctx, run, time.Now()), "a wake that came while the run worked is not lost")
		require.False(t, runs.linger(ctx, run, time.Now()), "each wake is taken once")
	})

	t.Run("WakeAfterLastLookIsHandedOn", func(t *testing.T) {
		t.Parallel()
		runs := newLocalRuns(lingerShare)
		runs.begin(1)
		require.True(t, runs.wake(1))
		require.True(t, runs.end(1), "a wake no run took goes to the waker")
	})

	t.Run("CrowdedDoesNotLinger", func(t *testing.T) {
		t.Parallel()
		runs := newLocalRuns(lingerShare)
		first, second := runs.begin(1), runs.begin(2)
		lingered := make(chan bool)
		go func() { lingered <- runs.linger(ctx, first, never) }()
		requireLingering(t, runs, 1)
		require.False(t, runs.linger(ctx, second, never), "one run may linger, and one does")
		require.True(t, runs.wake(1))
		require.True(t, <-lingered)
	})

	t.Run("StopEndsLinger", func(t *testing.T) {
		t.Parallel()
		runs := newLocalRuns(lingerShare)
		run := runs.begin(1)
		go runs.stop()
		require.False(t, runs.linger(ctx, run, never))
		runs.stop()
		require.False(t, runs.linger(ctx, run, never), "no run lingers once the relay stopped")
	})

	t.Run("EndedContextEndsLinger", func(t *testing.T) {
		t.Parallel()
		runs := newLocalRuns(lingerShare)
		run := runs.begin(1)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		require.False(t, runs.linger(ctx, run, never))
	})
}

// requireLingering waits until n runs linger.
func requireLingering(t *testing.T, runs *localRuns, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		runs.mu.Lock()
		defer runs.mu.Unlock()
		return runs.lingering == n
	}, 10*time.Second, time.Millisecond)
}
