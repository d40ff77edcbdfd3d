package outbox

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBatcher(t *testing.T) {
	t.Parallel()

	t.Run("EveryCallGetsItsOwnResult", func(t *testing.T) {
		t.Parallel()
		var flushes, largest atomic.Int64
		b := newBatcher(16, func(_ context.Context, in []int) ([]int, error) {
			flushes.Add(1)
			if int64(len(in)) > largest.Load() {
				largest.Store(int64(len(in)))
			}
			time.Sleep(time.Millisecond) // a round trip
			out := make([]int, len(in))
			for i, v := range in {
				out[i] = v * 2
			}
			return out, nil
		})
		var wg sync.WaitGroup
		for i := range 500 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := b.do(context.Background(), i)
				require.NoError(t, err)
				require.Equal(t, 2*i, out)
			}()
		}
		wg.Wait()
		require.Less(t, flushes.Load(), int64(500), "concurrent calls share flushes")
		require.LessOrEqual(t, largest.Load(), int64(16))
	})

	t.Run("ErrorsReachEveryCallOfTheBatch", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("boom")
		b := newBatcher(8, func(context.Context, []int) ([]int, error) { return nil, boom })
		_, err := b.do(context.Background(), 1)
		require.ErrorIs(t, err, boom)
	})

	t.Run("CanceledCallerDoesNotCancelTheFlush", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		var sawCanceled atomic.Bool
		b := newBatcher(8, func(ctx context.Context, in []int) ([]int, error) {
			<-release
			sawCanceled.Store(ctx.Err() != nil)
			return in, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _, _ = b.do(ctx, 1); close(done) }()
		time.Sleep(10 * time.Millisecond)
		waiter, cancelWaiter := context.WithCancel(context.Background())
		cancelWaiter()
		_, err := b.do(waiter, 2) // queued behind the running flush, then gives up
		require.ErrorIs(t, err, context.Canceled)
		cancel()
		close(release)
		<-done
		require.False(t, sawCanceled.Load())
	})
}
