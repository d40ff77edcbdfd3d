package jobs

import (
	"sync"
	"time"
)

// A job that snoozes for less than River's fetch poll interval is found
// only at the next poll (or the next insert's notification), up to a
// second after its time: River makes such a job available at once with a
// later scheduled time rather than scheduling it. fetchTimer has every
// process fetch deliver jobs when such a snooze ends, so that a hook's rate
// limit, which wakes its jobs before the rate allows more, keeps its pace:
// waiting for the poll lost 40 ms of every second at 50/s. It also makes
// punctual the jobs that step aside for a stalled hook (250 ms, 500 ms):
// beside CPU hogs, TestHangingHooksLeaveTheirHostToOthers then saw the
// stalled host's answering hook at p99 0.92–0.96 s, where limiting this to
// rate waits kept 0.29 s but slowed the crash tests' rescue (39 s).
type fetchTimer struct {
	mu      sync.Mutex
	pending map[int64]bool // buckets of fetchBucket with a fetch to come
}

// fetchBucket groups the fetches of snoozes ending close together into one;
// completerLag is how late River may record a run's end, its batch
// completer's pace: a snooze shorter than that is fetched again then.
const (
	fetchBucket  = 10 * time.Millisecond
	completerLag = 250 * time.Millisecond
)

// fetchAfter has every process fetch deliver jobs once a snooze of d ends,
// when River's own poll could find it late.
func (w *deliverWorker) fetchAfter(d time.Duration) {
	if d >= w.fetchPoll {
		return
	}
	d = max(d, 0)
	w.fetchIn(d + fetchBucket)
	if d < completerLag {
		w.fetchIn(completerLag + fetchBucket)
	}
}

// fetchIn has every process fetch deliver jobs in d, within fetchBucket.
func (w *deliverWorker) fetchIn(d time.Duration) {
	bucket := time.Now().Add(d).UnixNano() / int64(fetchBucket)
	t := &w.fetch
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[bucket] {
		return
	}
	if t.pending == nil {
		t.pending = map[int64]bool{}
	}
	t.pending[bucket] = true
	time.AfterFunc(time.Until(time.Unix(0, (bucket+1)*int64(fetchBucket))), func() {
		t.mu.Lock()
		delete(t.pending, bucket)
		t.mu.Unlock()
		if ctx := w.owner.base; ctx.Err() == nil {
			client := w.client()
			_ = client.Driver().GetExecutor().NotifyMany(ctx, fetchNow(client))
		}
	})
}
