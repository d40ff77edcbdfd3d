package demo

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
)

// flakyEndpoint answers the demo's deliveries, failing some first attempts
// on purpose so that retries show in River's UI.
type flakyEndpoint struct {
	attempts sync.Map // webhook-id → *atomic.Int64

	received, failedOnPurpose atomic.Int64
}

func (e *flakyEndpoint) handle(w http.ResponseWriter, d *receiver.Delivery) {
	e.received.Add(1)
	counter, _ := e.attempts.LoadOrStore(d.WebhookID, new(atomic.Int64))
	if attempt := counter.(*atomic.Int64).Add(1); attempt <= failuresFor(d.WebhookID) {
		e.failedOnPurpose.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// failuresFor decides from the delivery's ID how many attempts fail: none
// for 80 % of deliveries, one for 15 %, two for 5 %.
func failuresFor(webhookID string) int64 {
	sum := sha256.Sum256([]byte(webhookID))
	switch n := sum[0] % 100; {
	case n < 5:
		return 2
	case n < 20:
		return 1
	}
	return 0
}
