package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSlotGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		gate *slotGate
		now  time.Time
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		bundle := &testBundle{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		bundle.gate = newSlotGate(3, func() time.Time { return bundle.now })
		return bundle
	}
	past := func() time.Time { return time.Now().Add(-time.Second) }
	acquire := func(bundle *testBundle, key string) (bool, bool) {
		return bundle.gate.acquire(ctx, key, past())
	}

	t.Run("AnsweringKeyIsNeverRefused", func(t *testing.T) {
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
		require.True(t, acquired, "other keys are not affected")

		// A request ends unanswered: its slot is free again, and the key
		// stalls again once it is taken.
		bundle.gate.release("h", false)
		acquired, _ = acquire(bundle, "h")
		require.True(t, acquired)
		_, stalled = acquire(bundle, "h")
		require.True(t, stalled)
	})

	t.Run("WaitsForASlotWhileAnswered", func(t *testing.T) {
		t.Parallel()
		gate := newSlotGate(1, time.Now)
		acquired, _ := gate.acquire(ctx, "h", time.Now().Add(time.Minute))
		require.True(t, acquired)
		go func() {
			time.Sleep(10 * time.Millisecond)
			gate.release("h", true)
		}()
		acquired, _ = gate.acquire(ctx, "h", time.Now().Add(time.Minute))
		require.True(t, acquired, "the freed slot")
	})

	t.Run("FirstComeFirstServed", func(t *testing.T) {
		t.Parallel()
		gate := newSlotGate(1, time.Now)
		acquired, _ := gate.acquire(ctx, "h", time.Now().Add(time.Minute))
		require.True(t, acquired)
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acquired, _ := gate.acquire(ctx, "h", time.Now().Add(time.Minute))
				require.True(t, acquired)
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				gate.release("h", true)
			}()
			// Each waits before the next comes.
			require.Eventually(t, func() bool {
				gate.mu.Lock()
				defer gate.mu.Unlock()
				return len(gate.keys["h"].waiters) == i+1
			}, time.Second, time.Millisecond)
		}
		gate.release("h", true)
		wg.Wait()
		require.Equal(t, []int{0, 1, 2}, order)
		require.Empty(t, gate.keys, "every slot came back")
	})

	t.Run("WaiterThatGivesUpLosesNoSlot", func(t *testing.T) {
		t.Parallel()
		gate := newSlotGate(1, time.Now)
		acquired, _ := gate.acquire(ctx, "h", time.Now().Add(time.Minute))
		require.True(t, acquired)
		acquired, stalled := gate.acquire(ctx, "h", time.Now().Add(20*time.Millisecond))
		require.False(t, acquired, "no slot freed in time")
		require.False(t, stalled)
		gate.release("h", true)
		require.Empty(t, gate.keys, "the slot came back, not to the waiter that left")
	})

	t.Run("ForgetsIdleKeys", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		acquired, _ := acquire(bundle, "h")
		require.True(t, acquired)
		bundle.gate.release("h", true)
		require.Empty(t, bundle.gate.keys)
	})

	t.Run("RefusalWaitGrowsToThreeTimeouts", func(t *testing.T) {
		t.Parallel()
		require.InDelta(t, stallAfter, refusalWait(1, 10*time.Second), float64(stallAfter)/4)
		require.InDelta(t, 2*stallAfter, refusalWait(2, 10*time.Second), float64(stallAfter)/2)
		require.InDelta(t, 30*time.Second, refusalWait(100, 10*time.Second), float64(7*time.Second))
	})
}

func TestReceiverHost(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"http://127.0.0.1:9000/a":       "http://127.0.0.1:9000",
		"http://127.0.0.1:9000/b?x=1":   "http://127.0.0.1:9000",
		"https://Hooks.Example.com/x":   "https://hooks.example.com:443",
		"https://hooks.example.com:443": "https://hooks.example.com:443",
		"http://hooks.example.com/x":    "http://hooks.example.com:80",
		"http://[::1]:8080/x":           "http://::1:8080",
	} {
		require.Equal(t, want, receiverHost(url), url)
	}
}
