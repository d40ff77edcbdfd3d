package outbox

import (
	"context"
	"sync"
)

// batcher gathers concurrent calls into single calls of flush, so that a
// hundred workers each loading or recording one delivery make a handful of
// round trips instead of a hundred. Whoever finds no flush running flushes
// what is pending and then whatever arrived meanwhile; the others wait. At
// low load a call is flushed alone, at once: batching adds no delay.
type batcher[In, Out any] struct {
	flush    func(ctx context.Context, in []In) ([]Out, error)
	maxBatch int

	mu       sync.Mutex
	pending  []*batchCall[In, Out]
	flushing bool
}

type batchCall[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}
}

func newBatcher[In, Out any](maxBatch int, flush func(ctx context.Context, in []In) ([]Out, error)) *batcher[In, Out] {
	return &batcher[In, Out]{flush: flush, maxBatch: maxBatch}
}

// do returns flush's result for in. Flushes run with the flushing caller's
// ctx stripped of cancellation: a caller that gives up must not fail the
// others' work.
func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	call := &batchCall[In, Out]{in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, call)
	if b.flushing {
		b.mu.Unlock()
		select {
		case <-call.done:
			return call.out, call.err
		case <-ctx.Done():
			var zero Out
			return zero, ctx.Err()
		}
	}
	b.flushing = true
	b.mu.Unlock()

	b.drain(context.WithoutCancel(ctx), call)
	<-call.done
	return call.out, call.err
}

// drain flushes pending calls until none is left, or, with own set, until
// own is done: it then hands what is left to a goroutine, so that the caller
// who flushes is not kept busy by others under sustained load.
func (b *batcher[In, Out]) drain(ctx context.Context, own *batchCall[In, Out]) {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.maxBatch)
		if n == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		if own != nil && isClosed(own.done) {
			b.mu.Unlock()
			go b.drain(ctx, nil)
			return
		}
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()

		in := make([]In, n)
		for i, c := range batch {
			in[i] = c.in
		}
		out, err := b.flush(ctx, in)
		for i, c := range batch {
			if err != nil {
				c.err = err
			} else {
				c.out = out[i]
			}
			close(c.done)
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
