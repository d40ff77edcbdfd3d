package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHookGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		gate *hookGate
		now  time.Time
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		bundle := &testBundle{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		bundle.gate = newHookGate(3, 10*time.Second, func() time.Time { return bundle.now })
		return bundle
	}
	past := func() time.Time { return time.Now().Add(-time.Second) }
	acquire := func(bundle *testBundle, hookID string) (bool, bool) {
		return bundle.gate.acquire(ctx, hookID, past())
	}

	t.Run("AnsweringHookIsNeverRefused", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for range 3 {
			acquired, _ := acquire(bundle, "h")
			require.True(t, acquired)
		}
		bundle.now = bundle.now.Add(stallAfter / 2)
		acquired, stalled := acquire(bundle, "h")
		require.False(t, acquired, "every slot is held")
		require.False(t, stalled, "requests in flight for less than stallAfter")
		bundle.now = bundle.now.Add(stallAfter)
		bundle.gate.release("h", true)
		acquired, _ = acquire(bundle, "h")
		require.True(t, acquired, "a slot freed")
		bundle.now = bundle.now.Add(stallAfter / 2)
		_, stalled = acquire(bundle, "h")
		require.False(t, stalled, "an answer came in within stallAfter")
	})

	t.Run("HangingReceiverIsStalled", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for range 3 {
			acquired, _ := acquire(bundle, "h")
			require.True(t, acquired)
		}
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		acquired, stalled := acquire(bundle, "h")
		require.False(t, acquired)
		require.True(t, stalled)
		acquired, _ = acquire(bundle, "other")
		require.True(t, acquired, "other hooks are not affected")

		// A request ends unanswered: its slot is free again, and the hook
		// stalls again once it is taken.
		bundle.gate.release("h", false)
		acquired, _ = acquire(bundle, "h")
		require.True(t, acquired)
		_, stalled = acquire(bundle, "h")
		require.True(t, stalled)
	})

	t.Run("WaitsForASlotWhileAnswered", func(t *testing.T) {
		t.Parallel()
		gate := newHookGate(1, 10*time.Second, time.Now)
		acquired, _ := gate.acquire(ctx, "h", time.Now().Add(time.Minute))
		require.True(t, acquired)
		go func() {
			time.Sleep(10 * time.Millisecond)
			gate.release("h", true)
		}()
		acquired, _ = gate.acquire(ctx, "h", time.Now().Add(time.Minute))
		require.True(t, acquired, "the freed slot")
	})

	t.Run("ForgetsIdleHooks", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		acquired, _ := acquire(bundle, "h")
		require.True(t, acquired)
		bundle.gate.release("h", true)
		require.Empty(t, bundle.gate.hooks)
	})

	t.Run("RefusalWaitGrowsToThreeTimeouts", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		require.InDelta(t, stallAfter, bundle.gate.refusalWait(1), float64(stallAfter)/4)
		require.InDelta(t, 2*stallAfter, bundle.gate.refusalWait(2), float64(stallAfter)/2)
		require.InDelta(t, 30*time.Second, bundle.gate.refusalWait(100), float64(7*time.Second))
	})
}
