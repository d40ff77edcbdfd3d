package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

func TestDeliveryRequestMatchesContract(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, nil)

	hook, err := bundle.store.CreateHook(ctx, &outbox.HookParams{
		URL:      rec.URL + "/hooks/logto?x=1",
		Events:   []string{"PostRegister"},
		Headers:  map[string]string{"Authorization": "Bearer receiver-secret", "X-Env": "test"},
		TenantID: "tenant-a",
	})
	require.NoError(t, err)

	eventID, err := bundle.store.Publish(ctx, &outbox.Event{
		Type:     "PostRegister",
		Data:     map[string]any{"id": "u1", "username": "ann"},
		Context:  map[string]any{"userId": "u1", "sessionId": "s1", "ip": "203.0.113.5", "event": "spoofed", "tenantId": "spoofed"},
		TenantID: "tenant-a",
	})
	require.NoError(t, err)
	// Another tenant's event never reaches the hook.
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "PostRegister", TenantID: "tenant-b"})
	require.NoError(t, err)

	req := rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 1 })[0]
	event, err := bundle.store.GetEvent(ctx, eventID)
	require.NoError(t, err)

	wantBody := `{"hookId":"` + hook.ID + `","event":"PostRegister","createdAt":"` +
		event.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z") + `","eventId":"` + eventID +
		`","data":{"id":"u1","username":"ann"},"tenantId":"tenant-a","ip":"203.0.113.5","sessionId":"s1","userId":"u1"}`
	require.Equal(t, wantBody, string(req.Body))

	deliveries := bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)
	require.Equal(t, deliveries[0].ID, req.Header.Get("webhook-id"))
	require.Equal(t, "Bearer receiver-secret", req.Header.Get("Authorization"))
	require.Equal(t, "test", req.Header.Get("X-Env"))

	// The exact signature bytes, computed here from the spec.
	ts := req.Header.Get("webhook-timestamp")
	unix, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), unix, 30)
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(hook.SigningKey, "whsec_"))
	require.NoError(t, err)
	require.Len(t, secret, 32)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(deliveries[0].ID + "." + ts + "." + wantBody))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), req.Header.Get("webhook-signature"))
	logto := hmac.New(sha256.New, []byte(hook.SigningKey))
	logto.Write([]byte(wantBody))
	require.Equal(t, hex.EncodeToString(logto.Sum(nil)), req.Header.Get("logto-signature-sha-256"))
}

func TestDeliveryRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schedule := []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}

	for _, tt := range []struct {
		name    string
		fail    func(w http.ResponseWriter, r *http.Request)
		wantErr string
	}{
		{"ServerError", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, ""},
		{"Timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}, "timeout"},
		{"ConnectionReset", func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
		}, "reset"},
		{"RedirectIsNotFollowed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, ""},
		{"TooManyRequests", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const failures = 2
			bundle := setupPipeline(t, &jobs.Config{RetrySchedule: schedule, Timeout: 500 * time.Millisecond})
			rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= failures {
					tt.fail(w, r)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			hook := bundle.createHook(t, rec.URL, "*")
			_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
			require.NoError(t, err)

			deliveries := bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)
			delivery, err := bundle.store.GetDelivery(ctx, deliveries[0].ID)
			require.NoError(t, err)
			require.Equal(t, failures+1, delivery.AttemptCount)
			require.Len(t, delivery.Attempts, failures+1)
			for i, attempt := range delivery.Attempts[:failures] {
				require.Equal(t, i+1, attempt.Attempt)
				require.Contains(t, attempt.Error, tt.wantErr)
			}
			require.Equal(t, 200, *delivery.Attempts[failures].StatusCode)

			reqs := rec.all()
			require.Len(t, reqs, failures+1)
			for _, req := range reqs {
				require.Equal(t, delivery.ID, req.Header.Get("webhook-id"), "webhook-id is stable across attempts")
				require.Equal(t, 1, verifyStandardSignature(t, hook.SigningKey, req))
			}
		})
	}
}

func TestDeliveryFailsAfterLastAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schedule := []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: schedule})
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(strings.Repeat("e", 10000)))
	})
	hook := bundle.createHook(t, rec.URL, "*")
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)

	deliveries := bundle.waitDelivery(t, hook.ID, outbox.DeliveryFailed, 1)
	delivery, err := bundle.store.GetDelivery(ctx, deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, len(schedule)+1, delivery.AttemptCount)
	require.Len(t, delivery.Attempts, len(schedule)+1)
	require.Len(t, delivery.Attempts[0].ResponseBody, outbox.ResponseBodyMaxBytes, "the answer is kept truncated")
	require.NotNil(t, delivery.FinishedAt)

	// No further attempt comes.
	bundle.waitSettled(t)
	require.Len(t, rec.all(), len(schedule)+1)
}

func TestGoneDisablesHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusGone) })
	hook := bundle.createHook(t, rec.URL, "*")
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)

	bundle.waitDelivery(t, hook.ID, outbox.DeliveryFailed, 1)
	got, err := bundle.store.GetHook(ctx, hook.ID)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Contains(t, got.DisabledReason, "410")

	// A disabled hook receives no new deliveries.
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	bundle.waitSettled(t)
	require.Len(t, rec.all(), 1)
	deliveries, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
	require.NoError(t, err)
	require.Len(t, deliveries, 1, "the second event was fanned out to no delivery")
}

func TestDisabledHookCancelsPendingDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: []time.Duration{300 * time.Millisecond}})
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	hook := bundle.createHook(t, rec.URL, "*")
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)

	rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 1 })
	_, err = bundle.store.DisableHook(ctx, hook.ID, outbox.DisabledByOperator)
	require.NoError(t, err)

	// Canceled by the disabling itself, not at the next attempt.
	deliveries, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
	require.NoError(t, err)
	require.Len(t, deliveries, 1)
	require.Equal(t, outbox.DeliveryCanceled, deliveries[0].Status)

	bundle.waitSettled(t)
	// The attempt in flight at the disabling is logged, and nothing follows it.
	delivery, err := bundle.store.GetDelivery(ctx, deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, outbox.DeliveryCanceled, delivery.Status)
	require.Equal(t, 1, delivery.AttemptCount)
	require.Len(t, delivery.Attempts, 1)
	require.Equal(t, 500, *delivery.Attempts[0].StatusCode)
	require.Len(t, rec.all(), 1)

	// Re-enabling does not resurrect it.
	_, err = bundle.store.EnableHook(ctx, hook.ID)
	require.NoError(t, err)
	bundle.waitSettled(t)
	delivery, err = bundle.store.GetDelivery(ctx, deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, outbox.DeliveryCanceled, delivery.Status)
	require.Len(t, rec.all(), 1)
}

func TestReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schedule := []time.Duration{10 * time.Millisecond}
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: schedule})
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n <= 4 { // the first two deliveries fail both attempts
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hook := bundle.createHook(t, rec.URL, "*")
	start := time.Now().Add(-time.Second)
	for range 2 {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
	}
	failed := bundle.waitDelivery(t, hook.ID, outbox.DeliveryFailed, 2)

	t.Run("One", func(t *testing.T) {
		require.NoError(t, bundle.service.ReplayDelivery(ctx, failed[0].ID))
		bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)
		last := rec.all()[len(rec.all())-1]
		require.Equal(t, failed[0].ID, last.Header.Get("webhook-id"), "a replay keeps the webhook-id")

		delivery, err := bundle.store.GetDelivery(ctx, failed[0].ID)
		require.NoError(t, err)
		require.Equal(t, 3, delivery.AttemptCount)
		require.Equal(t, 3, delivery.Attempts[2].Attempt)
	})

	t.Run("UnknownDelivery", func(t *testing.T) {
		err := bundle.service.ReplayDelivery(ctx, "00000000-0000-0000-0000-000000000000")
		require.ErrorIs(t, err, outbox.ErrDeliveryNotFound)
		require.ErrorIs(t, bundle.service.ReplayDelivery(ctx, "not-a-uuid"), outbox.ErrDeliveryNotFound)
	})

	t.Run("RangeOfFailed", func(t *testing.T) {
		n, err := bundle.service.ReplayRange(ctx, &outbox.ReplayRange{HookID: hook.ID, Since: start, Status: outbox.DeliveryFailed})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 2)
		last := rec.all()[len(rec.all())-1]
		require.Equal(t, failed[1].ID, last.Header.Get("webhook-id"))
	})

	t.Run("SucceededKeepsItsHistory", func(t *testing.T) {
		require.NoError(t, bundle.service.ReplayDelivery(ctx, failed[0].ID))
		var delivery *outbox.Delivery
		require.Eventually(t, func() bool {
			var err error
			delivery, err = bundle.store.GetDelivery(ctx, failed[0].ID)
			require.NoError(t, err)
			return delivery.Status == outbox.DeliverySucceeded && delivery.AttemptCount == 4
		}, 20*time.Second, 20*time.Millisecond)
		require.Len(t, delivery.Attempts, 4, "the replay keeps the earlier success")
		for i, attempt := range delivery.Attempts {
			require.Equal(t, i+1, attempt.Attempt)
		}
		require.Equal(t, 200, *delivery.Attempts[2].StatusCode)
		require.Equal(t, 200, *delivery.Attempts[3].StatusCode)
	})

	t.Run("RangeReplaysFailedUnlessTold", func(t *testing.T) {
		// Both deliveries succeeded by now: the default replays none of them.
		n, err := bundle.service.ReplayRange(ctx, &outbox.ReplayRange{HookID: hook.ID, Since: start})
		require.NoError(t, err)
		require.Equal(t, 0, n, "re-sending successes is an explicit choice")
		_, err = bundle.service.ReplayRange(ctx, &outbox.ReplayRange{HookID: hook.ID, Since: start, Status: outbox.DeliveryPending})
		require.ErrorContains(t, err, "replay failed (the default), succeeded, canceled or all")

		requests := len(rec.all())
		n, err = bundle.service.ReplayRange(ctx, &outbox.ReplayRange{HookID: hook.ID, Since: start, Status: outbox.ReplayAllFinished})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == requests+2 })
		bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 2)
	})

	t.Run("RangeNeedsSince", func(t *testing.T) {
		_, err := bundle.service.ReplayRange(ctx, &outbox.ReplayRange{HookID: hook.ID})
		var validationErr *outbox.ValidationError
		require.ErrorAs(t, err, &validationErr)
	})

	t.Run("DisabledHookIsRefused", func(t *testing.T) {
		_, err := bundle.store.DisableHook(ctx, hook.ID, outbox.DisabledByOperator)
		require.NoError(t, err)
		require.ErrorIs(t, bundle.service.ReplayDelivery(ctx, failed[0].ID), jobs.ErrHookDisabled)
	})
}

func TestRotatedKeySignsDuringOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, nil)
	hook := bundle.createHook(t, rec.URL, "*")

	rotated, err := bundle.store.RotateHookKey(ctx, hook.ID, time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, hook.SigningKey, rotated.SigningKey)
	require.Equal(t, hook.SigningKey, rotated.PreviousSigningKey)

	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	req := rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 1 })[0]
	require.Len(t, strings.Split(req.Header.Get("webhook-signature"), " "), 2)
	require.Equal(t, 1, verifyStandardSignature(t, rotated.SigningKey, req))
	require.Equal(t, 1, verifyStandardSignature(t, hook.SigningKey, req))
	require.True(t, verifyLogtoSignature(hook.SigningKey, req), "Logto's signature keeps the previous key during the overlap: Logto receivers still hold it")
	require.False(t, verifyLogtoSignature(rotated.SigningKey, req))
	// The console's recomputed headers (SentHeaders) are those sent.
	delivery := bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)[0]
	delivery, err = bundle.store.GetDelivery(ctx, delivery.ID)
	require.NoError(t, err)
	current, err := bundle.store.GetHook(ctx, hook.ID)
	require.NoError(t, err)
	shown, ok := outbox.SentHeaders(current, delivery.ID, delivery.Attempts[0].CreatedAt, delivery.Body)
	require.True(t, ok)
	for _, name := range []string{"webhook-signature", "logto-signature-sha-256", "webhook-timestamp"} {
		require.Equal(t, req.Header.Get(name), shown.Get(name), name)
	}

	// Without overlap the old key stops at once.
	again, err := bundle.store.RotateHookKey(ctx, hook.ID, 0)
	require.NoError(t, err)
	require.Empty(t, again.PreviousSigningKey)
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	req = rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 2 })[1]
	require.Equal(t, 1, verifyStandardSignature(t, again.SigningKey, req))
	require.Equal(t, 0, verifyStandardSignature(t, rotated.SigningKey, req))
	require.True(t, verifyLogtoSignature(again.SigningKey, req), "once no overlap is left, Logto's signature uses the new key")
}

func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RefusedWithoutAllowList", func(t *testing.T) {
		t.Parallel()
		// No allowed networks: the guard refuses before any packet is sent,
		// so private and metadata addresses are safe to name here.
		logs := &lockedBuffer{}
		bundle := setupPipeline(t, &jobs.Config{AllowCIDRs: []netip.Prefix{}, RetrySchedule: []time.Duration{time.Hour},
			Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		rec := newReceiver(t, nil)
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(rec.URL, "http://"))
		urls := map[string]string{
			"loopback":        rec.URL,
			"localhost":       "http://localhost:" + port,
			"ipv6 loopback":   "http://[::1]:" + port,
			"mapped loopback": "http://[::ffff:127.0.0.1]:" + port,
			"private":         "http://10.1.2.3/hook",
			"metadata":        "http://169.254.169.254/latest/meta-data",
		}
		hooks := map[string]*outbox.Hook{}
		for name, url := range urls {
			hooks[name] = bundle.createHook(t, url, "*")
		}
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)

		for name, hook := range hooks {
			require.Eventually(t, func() bool {
				d, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
				return err == nil && len(d) == 1 && d[0].AttemptCount == 1
			}, 20*time.Second, 20*time.Millisecond, name)
			d, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
			require.NoError(t, err)
			require.Contains(t, d[0].LastError, "HOOKRELAY_ALLOW_CIDRS", name)
		}

		// A second refusal of each hook within minutes is not logged again.
		_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		for name, hook := range hooks {
			require.Eventually(t, func() bool {
				d, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
				return err == nil && len(d) == 2 && d[0].AttemptCount == 1 && d[1].AttemptCount == 1
			}, 20*time.Second, 20*time.Millisecond, name)
		}
		logged := map[string]int{}
		for line := range strings.Lines(logs.String()) {
			var entry struct {
				Level, Msg, Reason string
				HookID             string `json:"hook_id"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &entry))
			if strings.Contains(entry.Msg, "SSRF guard") {
				require.Equal(t, "WARN", entry.Level)
				require.Contains(t, entry.Reason, "HOOKRELAY_ALLOW_CIDRS")
				logged[entry.HookID]++
			}
		}
		for name, hook := range hooks {
			require.Equal(t, 1, logged[hook.ID], "one warning per hook per interval: %s", name)
		}
		require.Empty(t, rec.all(), "nothing reached the receiver")
	})

	t.Run("DeliveredWithAllowList", func(t *testing.T) {
		t.Parallel()
		bundle := setupPipeline(t, &jobs.Config{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		rec := newReceiver(t, nil)
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(rec.URL, "http://"))
		hook := bundle.createHook(t, "http://127.0.0.1:"+port+"/x", "*")
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)
	})
}

func TestTestSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, nil)
	hook := bundle.createHook(t, rec.URL, "User.*")

	delivery, err := bundle.service.TestHook(ctx, hook.ID, "")
	require.NoError(t, err)
	require.Equal(t, outbox.DeliverySucceeded, delivery.Status)
	require.Len(t, delivery.Attempts, 1)

	reqs := rec.all()
	require.Len(t, reqs, 1)
	var body map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].Body, &body))
	require.Equal(t, "User.Created", body["event"], "by default, a type the hook receives")
	require.Equal(t, true, body["test"])
	require.Equal(t, 1, verifyStandardSignature(t, hook.SigningKey, reqs[0]))

	// Sent once by the workers, whatever the answer and the hook's state:
	// no retry follows a failed test.
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) })
	failingHook := bundle.createHook(t, failing.URL, "*")
	_, err = bundle.store.DisableHook(ctx, failingHook.ID, outbox.DisabledByOperator)
	require.NoError(t, err)
	delivery, err = bundle.service.TestHook(ctx, failingHook.ID, "User.Created")
	require.NoError(t, err)
	require.Equal(t, outbox.DeliveryFailed, delivery.Status)
	require.Equal(t, 502, *delivery.LastStatusCode)
	bundle.waitSettled(t)
	require.Len(t, failing.all(), 1)

	_, err = bundle.service.TestHook(ctx, hook.ID, "bad type")
	require.ErrorContains(t, err, "invalid event type")
	_, err = bundle.service.TestHook(ctx, "00000000-0000-0000-0000-000000000000", "")
	require.ErrorIs(t, err, outbox.ErrHookNotFound)
}

// TestDeliveryDetails: what an operator asks first of a delivery: its event
// type, when its next attempt is due, the body it sends, and pages of them.
func TestDeliveryDetails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, &jobs.Config{RetrySchedule: []time.Duration{time.Hour}})
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	hook := bundle.createHook(t, rec.URL, "*")
	for _, eventType := range []string{"User.Created", "Role.Created", "PostSignIn"} {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: eventType, Data: map[string]any{"type": eventType}})
		require.NoError(t, err)
	}
	var failedOnce []*outbox.Delivery
	require.Eventually(t, func() bool {
		var err error
		failedOnce, err = bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID})
		require.NoError(t, err)
		for _, d := range failedOnce {
			if d.AttemptCount != 1 {
				return false
			}
		}
		return len(failedOnce) == 3
	}, 20*time.Second, 20*time.Millisecond)

	for _, d := range failedOnce {
		require.Equal(t, outbox.DeliveryPending, d.Status)
		require.NotEmpty(t, d.EventType)
		require.NotNil(t, d.NextAttemptAt)
		require.WithinDuration(t, time.Now().Add(time.Hour), *d.NextAttemptAt, 13*time.Minute, "the schedule's hour, ±20 %")
	}
	shown, err := bundle.store.GetDelivery(ctx, failedOnce[0].ID)
	require.NoError(t, err)
	var sent []byte
	for _, req := range rec.all() {
		if req.Header.Get("webhook-id") == shown.ID {
			sent = req.Body
		}
	}
	require.Equal(t, string(sent), string(shown.Body), "the body shown is the body sent")

	// Pages, newest first, by keyset.
	page1, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID, Max: 2})
	require.NoError(t, err)
	require.Len(t, page1, 2)
	page2, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID, Max: 2, After: page1[1].ID})
	require.NoError(t, err)
	require.Len(t, page2, 1)
	require.Equal(t, []string{failedOnce[0].ID, failedOnce[1].ID, failedOnce[2].ID}, []string{page1[0].ID, page1[1].ID, page2[0].ID})
	_, err = bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{After: "page-2"})
	var validationErr *outbox.ValidationError
	require.ErrorAs(t, err, &validationErr)
}

// lockedBuffer is a buffer that a logger may write from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestGoneDisablesABusyHook: a hook with a backlog of 5,000 deliveries
// answers 410 to all. Dozens of runs learn it at once and each disables the
// hook: it ends disabled once, announced once, with every delivery failed or
// canceled, while a healthy hook beside it gets every event.
func TestGoneDisablesABusyHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	gone := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusGone) })
	ok := newReceiver(t, nil)
	goneHook := bundle.createHook(t, gone.URL, "User.*")
	okHook := bundle.createHook(t, ok.URL, "User.*")
	watcher := bundle.createHook(t, ok.URL+"/watch", outbox.EventHookDisabled)

	const events = 5000
	require.NoError(t, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
		for range events {
			if _, err := bundle.store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Created"}); err != nil {
				return err
			}
		}
		return nil
	}))

	bundle.waitDeliveryWithin(t, okHook.ID, outbox.DeliverySucceeded, events, 2*time.Minute)
	got, err := bundle.store.GetHook(ctx, goneHook.ID)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Contains(t, got.DisabledReason, "410")
	require.Eventually(t, func() bool {
		var pending int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE hook_id = $1 AND status = 'pending'", goneHook.ID).Scan(&pending))
		return pending == 0
	}, time.Minute, 100*time.Millisecond, "every delivery of the gone hook ends")
	var announced int
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.events WHERE type = $1", outbox.EventHookDisabled).Scan(&announced))
	require.Equal(t, 1, announced, "one Hook.Disabled, however many runs disabled it")
	bundle.waitDelivery(t, watcher.ID, outbox.DeliverySucceeded, 1)
}
