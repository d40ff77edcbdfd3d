package bench

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrelay/hookrelay/outbox"
)

// receiver answers 204 to every correctly signed delivery and remembers when
// each event arrived.
type receiver struct {
	server   *http.Server
	listener net.Listener
	keys     sync.Map // hook ID → signing key

	verified, bad atomic.Int64

	// tracking makes it remember arrivals, for the latency phases only, so
	// that a long throughput run does not grow the process's memory.
	tracking atomic.Bool
	mu       sync.Mutex
	arrivals []arrival
}

type arrival struct {
	eventID, hookID string
	at              time.Time
}

func startReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{listener: l}
	r.server = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.server.Serve(l) }()
	return r, nil
}

func (r *receiver) url(path string) string { return "http://" + r.listener.Addr().String() + path }

func (r *receiver) close() { _ = r.server.Close() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(req.Body)
	var envelope struct {
		HookID  string `json:"hookId"`
		EventID string `json:"eventId"`
	}
	if err != nil || json.Unmarshal(body, &envelope) != nil || !r.verify(req, envelope.HookID, body) {
		r.bad.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.tracking.Load() {
		r.mu.Lock()
		r.arrivals = append(r.arrivals, arrival{eventID: envelope.EventID, hookID: envelope.HookID, at: at})
		r.mu.Unlock()
	}
	r.verified.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) verify(req *http.Request, hookID string, body []byte) bool {
	key, ok := r.keys.Load(hookID)
	if !ok {
		return false
	}
	timestamp, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return false
	}
	return outbox.VerifySignatureV1(key.(string), req.Header.Get("webhook-id"), timestamp, body, req.Header.Get("webhook-signature"))
}

// takeArrivals returns the arrivals so far and forgets them.
func (r *receiver) takeArrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	arrivals := r.arrivals
	r.arrivals = nil
	return arrivals
}
