package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookrelay/hookrelay/outbox"
)

// drainMaxBytes is how much of an answer past what is kept is read so the
// connection can be reused; a longer answer closes the connection instead.
const drainMaxBytes = 64 << 10

// responseHeaderMaxBytes bounds a receiver's answer headers.
const responseHeaderMaxBytes = 64 << 10

// sender makes the HTTP requests of deliveries.
type sender struct {
	clients [overflowSlot + 1]*http.Client // by the slot of a request
	timeout time.Duration
	now     func() time.Time
	tracer  trace.Tracer // nil: the relay does not trace
}

func newSender(config *Config) *sender {
	guard := &addrGuard{allow: config.AllowCIDRs}
	dialer := &net.Dialer{Timeout: config.Timeout, KeepAlive: 30 * time.Second, Control: guard.control}
	// A host's requests in flight are bounded by its slots (gate.go), and
	// so are its connections: every one stays in the pool when idle, none
	// is closed for want of room and dialled again, and a request that
	// finds none idle waits for one coming back rather than dial past the
	// bound. The overflow slots, which answering hooks get while stalled
	// hooks hold the host's connections, have connections of their own.
	newClient := func(conns int) *http.Client {
		return &http.Client{
			Transport: &http.Transport{
				Proxy:                 nil, // a proxy would dial for us, past the guard
				DialContext:           dialer.DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          max(1000, config.ProcessConcurrency),
				MaxIdleConnsPerHost:   conns,
				MaxConnsPerHost:       conns,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   config.Timeout,
				ResponseHeaderTimeout: config.Timeout,
				// A receiver's headers are read whole; Go's default allows 10 MiB.
				MaxResponseHeaderBytes: responseHeaderMaxBytes,
			},
			// Redirects are not followed: a receiver answers for itself, and a
			// redirect could lead past the guard's intent to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &sender{
		clients: [...]*http.Client{hostSlot: newClient(config.HostConcurrency), overflowSlot: newClient(config.HostConcurrency / 2)},
		timeout: config.Timeout,
		now:     config.Now,
		tracer:  config.tracer(),
	}
}

// outcome is the result of one request.
type outcome struct {
	result *outbox.AttemptResult
	// retryAfter is the receiver's Retry-After on 429 and 503, else zero.
	retryAfter time.Duration
	// aborted means the request was cut short by the process itself, not by
	// its timeout or the receiver: it is no attempt.
	aborted bool
	// blocked means the SSRF guard refused the receiver's address.
	blocked bool
}

func (o *outcome) succeeded() bool {
	return o.result.StatusCode >= 200 && o.result.StatusCode < 300 && o.result.Error == ""
}

// send POSTs send's body to its hook, signed, over the connections of its
// slot, and reports what happened. It never returns an error: every failure
// is an outcome to record.
func (s *sender) send(ctx context.Context, send *outbox.Send, attempt int, slot grant) *outcome {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	start := s.now()
	result := &outbox.AttemptResult{Attempt: attempt, At: start}
	out := &outcome{result: result}
	traceParent, endSpan := startAttempt(ctx, s.tracer, send, attempt)
	defer func() {
		result.Duration = s.now().Sub(start)
		endSpan(out)
	}()

	req, err := newSignedRequest(ctx, send, start)
	if err != nil {
		result.Error = err.Error()
		return out
	}
	if traceParent != "" {
		req.Header.Set("traceparent", traceParent)
	}
	resp, err := s.clients[slot].Do(req)
	if err != nil {
		var blocked *BlockedAddressError
		result.Error = describeRequestError(err, s.timeout)
		out.aborted = parent.Err() != nil
		out.blocked = errors.As(err, &blocked)
		return out
	}
	defer resp.Body.Close()

	result.StatusCode = resp.StatusCode
	result.ResponseBody, err = io.ReadAll(io.LimitReader(resp.Body, outbox.ResponseBodyMaxBytes))
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, drainMaxBytes))
	}
	if err != nil {
		result.Error = "reading the answer: " + describeRequestError(err, s.timeout)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		out.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), start)
	}
	return out
}

// newSignedRequest builds the request of the contract: JSON body, both
// signature schemes, the hook's custom headers.
func newSignedRequest(ctx context.Context, send *outbox.Send, now time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, send.Hook.URL, bytes.NewReader(send.Body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if req.Header, err = outbox.SignedHeaders(send.Hook, send.DeliveryID, now, send.Body); err != nil {
		return nil, err
	}
	return req, nil
}

// describeRequestError says what went wrong in words an operator can act on.
func describeRequestError(err error, timeout time.Duration) string {
	var blocked *BlockedAddressError
	var urlErr *url.Error
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no complete answer within the timeout of %s", timeout)
	case errors.As(err, &urlErr):
		// The URL may hold a secret in its path or query: leave it out.
		return urlErr.Err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; zero when it
// is absent, malformed or in the past.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		return time.Duration(min(seconds, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
