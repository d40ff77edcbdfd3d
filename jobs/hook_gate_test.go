package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHookGate(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		gate *hookGate
		now  time.Time
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		bundle := &testBundle{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		bundle.gate = newHookGate(10*time.Second, func() time.Time { return bundle.now })
		return bundle
	}

	t.Run("HealthyHookIsNeverLimited", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for range 50 {
			require.True(t, bundle.gate.enter("h"))
			bundle.gate.requestStarted("h")
		}
		bundle.now = bundle.now.Add(stallAfter / 2)
		require.True(t, bundle.gate.enter("h"), "requests in flight for less than stallAfter")
		bundle.gate.requestEnded("h", true)
		bundle.now = bundle.now.Add(stallAfter)
		require.True(t, bundle.gate.enter("h"), "an answer came in since")
	})

	t.Run("HangingReceiverAdmitsFewJobs", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for range stalledJobsMax {
			require.True(t, bundle.gate.enter("h"))
			bundle.gate.requestStarted("h")
		}
		bundle.now = bundle.now.Add(stallAfter + time.Millisecond)
		require.False(t, bundle.gate.enter("h"))
		require.True(t, bundle.gate.enter("other"), "other hooks are not affected")

		// One job ends: another may take its place.
		bundle.gate.requestEnded("h", false)
		bundle.gate.leave("h")
		require.True(t, bundle.gate.enter("h"))
		require.False(t, bundle.gate.enter("h"))
	})

	t.Run("UnansweredRequestCountsForOneTimeout", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		for range stalledJobsMax {
			require.True(t, bundle.gate.enter("h"))
		}
		bundle.gate.requestStarted("h")
		bundle.gate.requestEnded("h", false)
		require.False(t, bundle.gate.enter("h"))

		bundle.now = bundle.now.Add(10 * time.Second)
		require.True(t, bundle.gate.enter("h"), "the failure is older than the timeout")
	})

	t.Run("ForgetsIdleHooks", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		require.True(t, bundle.gate.enter("h"))
		bundle.gate.requestStarted("h")
		bundle.gate.requestEnded("h", true)
		bundle.gate.leave("h")
		require.Empty(t, bundle.gate.hooks)
	})
}
