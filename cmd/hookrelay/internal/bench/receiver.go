package bench

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
)

// counter answers 204 to every verified delivery, counts them, and during
// the latency phases remembers when each arrived.
type counter struct {
	verified atomic.Int64

	// tracking turns arrivals on for the latency phases only, so that a
	// long throughput run does not grow the process's memory.
	tracking atomic.Bool
	mu       sync.Mutex
	arrivals []*receiver.Delivery
}

func (c *counter) handle(w http.ResponseWriter, d *receiver.Delivery) {
	if c.tracking.Load() {
		c.mu.Lock()
		c.arrivals = append(c.arrivals, d)
		c.mu.Unlock()
	}
	c.verified.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// takeArrivals returns the arrivals so far and forgets them.
func (c *counter) takeArrivals() []*receiver.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	arrivals := c.arrivals
	c.arrivals = nil
	return arrivals
}
