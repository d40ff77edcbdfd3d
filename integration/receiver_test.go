package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a real HTTP server that records every request; respond decides
// each answer (nil: 204).
type receiver struct {
	*httptest.Server
	respond func(w http.ResponseWriter, r *http.Request, n int) // n counts requests from 1

	mu       sync.Mutex
	requests []received
	active   map[string]int // webhook-id → requests being answered
	arrived  chan struct{}

	// connections counts the connections accepted, handshakes the TLS
	// handshakes of a receiver started with newTLSReceiver; open counts
	// the connections open and the most open at once.
	connections, handshakes atomic.Int64
	open                    inFlightPeak
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rec := newUnstartedReceiver(t, respond)
	rec.Start()
	return rec
}

// newTLSReceiver is newReceiver serving HTTPS (HTTP/1.1: a handshake per
// connection), with a certificate for 127.0.0.1 that rec.Certificate()
// returns.
func newTLSReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rec := newUnstartedReceiver(t, respond)
	rec.TLS = &tls.Config{VerifyConnection: func(tls.ConnectionState) error {
		rec.handshakes.Add(1)
		return nil
	}}
	rec.StartTLS()
	return rec
}

func newUnstartedReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	t.Helper()
	rec := &receiver{respond: respond, arrived: make(chan struct{}, 1), active: map[string]int{}}
	rec.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		rec.mu.Lock()
		rec.requests = append(rec.requests, received{Header: r.Header.Clone(), Body: body, At: time.Now()})
		n := len(rec.requests)
		rec.active[id]++
		rec.mu.Unlock()
		defer func() {
			rec.mu.Lock()
			if rec.active[id]--; rec.active[id] == 0 {
				delete(rec.active, id)
			}
			rec.mu.Unlock()
		}()
		select {
		case rec.arrived <- struct{}{}:
		default:
		}
		if rec.respond != nil {
			rec.respond(w, r, n)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	rec.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		switch state {
		case http.StateNew:
			rec.connections.Add(1)
			rec.open.enter()
		case http.StateClosed, http.StateHijacked:
			rec.open.leave()
		}
	}
	t.Cleanup(rec.Close)
	return rec
}

// inFlight returns the webhook-ids of the requests being answered.
func (r *receiver) inFlight() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Keys(r.active))
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// waitFor waits until cond holds for the requests received, failing the test
// after timeout.
func (r *receiver) waitFor(t *testing.T, timeout time.Duration, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if all := r.all(); cond(all) {
			return all
		}
		select {
		case <-r.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			all := r.all()
			require.FailNow(t, "timed out waiting for requests", "%d received", len(all))
			return nil
		}
	}
}

// verifyStandardSignature checks webhook-signature the way a receiver
// following the Standard Webhooks spec would, written here independently of
// hookrelay's code. It returns how many signatures matched.
func verifyStandardSignature(t *testing.T, key string, req received) int {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "whsec_"))
	require.NoError(t, err)
	id := req.Header.Get("webhook-id")
	ts := req.Header.Get("webhook-timestamp")
	_, err = strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err, "webhook-timestamp is Unix seconds")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + ts + "." + string(req.Body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	matched := 0
	for _, sig := range strings.Split(req.Header.Get("webhook-signature"), " ") {
		if hmac.Equal([]byte(sig), []byte(want)) {
			matched++
		}
	}
	return matched
}

// verifyLogtoSignature checks logto-signature-sha-256 as Logto's docs show.
func verifyLogtoSignature(key string, req received) bool {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(req.Body)
	return hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(req.Header.Get("logto-signature-sha-256")))
}
