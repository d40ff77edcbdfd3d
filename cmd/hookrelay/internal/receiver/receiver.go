// Package receiver is a webhook endpoint that verifies every delivery's
// signature as a Standard Webhooks receiver would, for hookrelay demo and
// bench.
package receiver

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

// Delivery is one correctly signed request.
type Delivery struct {
	HookID    string
	EventID   string
	WebhookID string
	At        time.Time
}

// Receiver is an http.Handler; Start also serves it on a loopback port until
// Close.
type Receiver struct {
	server   *http.Server
	listener net.Listener
	keys     sync.Map // hook ID → signing key
	handle   func(w http.ResponseWriter, d *Delivery)

	// BadSignatures counts requests refused with 401.
	BadSignatures atomic.Int64
}

// New returns a receiver whose handle answers each correctly signed
// delivery.
func New(handle func(w http.ResponseWriter, d *Delivery)) *Receiver {
	return &Receiver{handle: handle}
}

// Start serves a new receiver on a free loopback port.
func Start(handle func(w http.ResponseWriter, d *Delivery)) (*Receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := New(handle)
	r.listener = l
	r.server = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.server.Serve(l) }()
	return r, nil
}

// AddHook makes the receiver accept deliveries of hook.
func (r *Receiver) AddHook(hook *outbox.Hook) { r.keys.Store(hook.ID, hook.SigningKey) }

// URL is the receiver's address with path.
func (r *Receiver) URL(path string) string { return "http://" + r.listener.Addr().String() + path }

// Close stops serving.
func (r *Receiver) Close() { _ = r.server.Close() }

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var envelope struct {
		HookID  string `json:"hookId"`
		EventID string `json:"eventId"`
	}
	if err != nil || json.Unmarshal(body, &envelope) != nil || !r.verify(req, envelope.HookID, body) {
		r.BadSignatures.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.handle(w, &Delivery{HookID: envelope.HookID, EventID: envelope.EventID, WebhookID: req.Header.Get("webhook-id"), At: at})
}

// verify checks webhook-signature, and that webhook-timestamp is within five
// minutes, as the Standard Webhooks spec advises.
func (r *Receiver) verify(req *http.Request, hookID string, body []byte) bool {
	key, ok := r.keys.Load(hookID)
	if !ok {
		return false
	}
	timestamp, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(timestamp, 0)).Abs() > 5*time.Minute {
		return false
	}
	return outbox.VerifySignatureV1(key.(string), req.Header.Get("webhook-id"), timestamp, body, req.Header.Get("webhook-signature"))
}
