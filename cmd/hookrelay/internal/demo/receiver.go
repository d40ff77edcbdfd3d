package demo

import (
	"crypto/sha256"
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

// receiver is the demo's webhook endpoint. It verifies every signature and
// fails some first attempts on purpose, so that retries show in River's UI.
type receiver struct {
	server   *http.Server
	listener net.Listener

	keys     sync.Map // hook ID → signing key
	attempts sync.Map // webhook-id → *atomic.Int64

	received, failedOnPurpose, badSignature atomic.Int64
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
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.received.Add(1)
	if !r.verify(req, body) {
		r.badSignature.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	counter, _ := r.attempts.LoadOrStore(id, new(atomic.Int64))
	if attempt := counter.(*atomic.Int64).Add(1); attempt <= failuresFor(id) {
		r.failedOnPurpose.Add(1)
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

// verify checks webhook-signature as a Standard Webhooks receiver does.
func (r *receiver) verify(req *http.Request, body []byte) bool {
	var envelope struct {
		HookID string `json:"hookId"`
	}
	if json.Unmarshal(body, &envelope) != nil {
		return false
	}
	key, ok := r.keys.Load(envelope.HookID)
	if !ok {
		return false
	}
	timestamp, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(timestamp, 0)).Abs() > 5*time.Minute {
		return false
	}
	return outbox.VerifySignatureV1(key.(string), req.Header.Get("webhook-id"), timestamp, body, req.Header.Get("webhook-signature"))
}
