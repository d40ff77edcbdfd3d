package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
	"github.com/hookrelay/hookrelay/server"
)

const adminToken = "test-admin-token-0123456789"

type apiBundle struct {
	*pipelineBundle
	url string
}

func setupAPI(t testing.TB) *apiBundle {
	t.Helper()
	bundle := setupPipeline(t, nil)
	srv, err := server.New(&server.Config{Relay: bundle.service.Relay, AdminToken: adminToken})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, srv.Start(ctx))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &apiBundle{pipelineBundle: bundle, url: ts.URL}
}

// call sends a request with the admin token and decodes the JSON answer into
// out when it is not nil.
func (b *apiBundle) call(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		require.NoError(t, err)
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, b.url+path, reader)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out), string(data))
	}
	return resp.StatusCode
}

func TestAPIAuthorization(t *testing.T) {
	t.Parallel()
	bundle := setupAPI(t)
	hook := bundle.createHook(t, "https://example.com/hook", "*")

	routes := []struct{ method, path string }{
		{"GET", "/api/hooks"}, {"POST", "/api/hooks"}, {"GET", "/api/hooks/" + hook.ID},
		{"PATCH", "/api/hooks/" + hook.ID}, {"DELETE", "/api/hooks/" + hook.ID},
		{"POST", "/api/hooks/" + hook.ID + "/enable"}, {"POST", "/api/hooks/" + hook.ID + "/disable"},
		{"POST", "/api/hooks/" + hook.ID + "/rotate-key"}, {"POST", "/api/hooks/" + hook.ID + "/test"},
		{"GET", "/api/hooks/" + hook.ID + "/stats"}, {"GET", "/api/deliveries"},
		{"GET", "/api/deliveries/" + hook.ID}, {"POST", "/api/deliveries/" + hook.ID + "/replay"},
		{"POST", "/api/deliveries/replay"}, {"POST", "/api/events"}, {"GET", "/api/unknown"},
		{"GET", "/riverui/"}, {"GET", "/riverui/api/jobs"},
		{"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/profile?seconds=1"}, {"GET", "/debug/pprof/heap"}, {"GET", "/debug/pprof/trace"},
	}
	for _, route := range routes {
		for name, auth := range map[string]func(*http.Request){
			"None":        func(*http.Request) {},
			"WrongBearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") },
			"WrongBasic":  func(r *http.Request) { r.SetBasicAuth("admin", "nope") },
			"TokenPrefix": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+adminToken[:10]) },
		} {
			req, err := http.NewRequest(route.method, bundle.url+route.path, nil)
			require.NoError(t, err)
			auth(req)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s %s", name, route.method, route.path)
			challenge := `Bearer realm="hookrelay"`
			if strings.HasPrefix(route.path, "/riverui/") {
				challenge = `Basic realm="hookrelay"`
			}
			require.Equal(t, challenge, resp.Header.Get("WWW-Authenticate"))
		}
		if !strings.HasPrefix(route.path, "/riverui/") {
			// The Basic credentials a browser caches for River's UI do not
			// open the API, nor the profiles.
			req, err := http.NewRequest(route.method, bundle.url+route.path, nil)
			require.NoError(t, err)
			req.SetBasicAuth("admin", adminToken)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "Basic %s %s", route.method, route.path)
		}
	}

	// With the token, as bearer or as Basic password.
	req, _ := http.NewRequest("GET", bundle.url+"/riverui/", nil)
	req.SetBasicAuth("admin", adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(page), "<html")

	// Go's profiles, with the token; not the command line, which may hold
	// secrets given as flags.
	for path, want := range map[string]int{
		"/debug/pprof/": http.StatusOK, "/debug/pprof/goroutine?debug=1": http.StatusOK, "/debug/pprof/heap": http.StatusOK,
		"/debug/pprof/profile?seconds=1": http.StatusOK, "/debug/pprof/profile?seconds=999": http.StatusBadRequest,
		"/debug/pprof/cmdline": http.StatusNotFound,
	} {
		req, _ := http.NewRequest("GET", bundle.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, path)
		if want == http.StatusOK {
			require.NotEmpty(t, body, path)
		}
	}
	// Nothing is registered, unauthorized, on an embedding application's
	// default mux (as importing net/http/pprof would).
	_, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", "/debug/pprof/", nil))
	require.Empty(t, pattern)

	for _, open := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(bundle.url + open)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, open)
	}

	// Metrics behind the token, where the port is exposed.
	protected, err := server.New(&server.Config{Relay: bundle.service.Relay, AdminToken: adminToken, ProtectMetrics: true})
	require.NoError(t, err)
	ts := httptest.NewServer(protected)
	t.Cleanup(ts.Close)
	resp, err = http.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, _ = http.NewRequest("GET", ts.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestCrossSiteRequestsAreRefused replays what a page on another site can
// make a browser send that holds the admin token as Basic credentials for
// River's UI: form-shaped text/plain bodies with its own Origin.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	t.Parallel()
	bundle := setupAPI(t)
	send := func(method, path, contentType, body string, header func(*http.Request)) int {
		req, err := http.NewRequest(method, bundle.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		header(req)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	crossSite := func(r *http.Request) {
		r.SetBasicAuth("admin", adminToken)
		r.Header.Set("Origin", "https://attacker.example")
	}
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/api/hooks", `{"url":"https://attacker.example/x","events":["*"],"ignore":"="}`},
		{"POST", "/api/events", `{"event":"User.Created","data":{},"x":"="}`},
		{"POST", "/riverui/api/jobs/delete", `{"ids":[1],"x":"="}`},
	} {
		status := send(tt.method, tt.path, "text/plain", tt.body, crossSite)
		require.Contains(t, []int{http.StatusForbidden, http.StatusUnauthorized}, status, "%s %s", tt.method, tt.path)
		status = send(tt.method, tt.path, "text/plain", tt.body, func(r *http.Request) {
			r.SetBasicAuth("admin", adminToken)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		})
		require.Contains(t, []int{http.StatusForbidden, http.StatusUnauthorized}, status, "%s %s", tt.method, tt.path)
	}
	// Even with the bearer token and from the same origin, the API takes
	// JSON only.
	status := send("POST", "/api/hooks", "text/plain", `{"url":"https://example.com/x","events":["*"]}`, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+adminToken)
	})
	require.Equal(t, http.StatusUnsupportedMediaType, status)
	// So does River's UI, with the token and no Origin.
	status = send("POST", "/riverui/api/jobs/cancel", "text/plain", `{"job_ids":["1"]}`, func(r *http.Request) {
		r.SetBasicAuth("admin", adminToken)
	})
	require.Equal(t, http.StatusUnsupportedMediaType, status)
	hooks, err := bundle.store.ListHooks(context.Background())
	require.NoError(t, err)
	require.Empty(t, hooks, "no request created a hook")
	var events int
	require.NoError(t, bundle.pool.QueryRow(context.Background(), "SELECT count(*) FROM hookrelay.events").Scan(&events))
	require.Zero(t, events, "no request published an event")
}

func TestAPIOperations(t *testing.T) {
	t.Parallel()
	bundle := setupAPI(t)
	rec := newReceiver(t, nil)

	var hook outbox.Hook
	require.Equal(t, http.StatusCreated, bundle.call(t, "POST", "/api/hooks", map[string]any{
		"name": "crm", "url": rec.URL, "events": []string{"User.*"},
		"headers": map[string]string{"X-Team": "id", "Authorization": "Bearer receiver-token-0123456789"},
	}, &hook))
	require.Equal(t, "crm", hook.Name)
	require.True(t, strings.HasPrefix(hook.SigningKey, "whsec_"))

	var apiErr map[string]string
	require.Equal(t, http.StatusBadRequest, bundle.call(t, "POST", "/api/hooks", map[string]any{"url": "ftp://x", "events": []string{"*"}}, &apiErr))
	require.Contains(t, apiErr["error"], "scheme must be http or https")
	require.Equal(t, http.StatusBadRequest, bundle.call(t, "POST", "/api/hooks", map[string]any{"url": rec.URL, "events": []string{"*"}, "bogus": 1}, &apiErr))
	require.Contains(t, apiErr["error"], "unknown field")
	require.Equal(t, http.StatusNotFound, bundle.call(t, "GET", "/api/hooks/00000000-0000-0000-0000-000000000000", nil, &apiErr))
	require.Contains(t, apiErr["error"], "hook not found")

	// Keys are shown on creation and on request only.
	var shown outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "GET", "/api/hooks/"+hook.ID, nil, &shown))
	require.Equal(t, "whsec_****"+hook.SigningKey[len(hook.SigningKey)-4:], shown.SigningKey)
	var listed []outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "GET", "/api/hooks", nil, &listed))
	require.Equal(t, shown.SigningKey, listed[0].SigningKey)
	// Custom header values too: they often carry credentials.
	require.Equal(t, map[string]string{"X-Team": "****", "Authorization": "****6789"}, shown.Headers)
	require.Equal(t, shown.Headers, listed[0].Headers)
	require.Equal(t, http.StatusOK, bundle.call(t, "GET", "/api/hooks/"+hook.ID+"?revealKey=true", nil, &shown))
	require.Equal(t, hook.SigningKey, shown.SigningKey)
	require.Equal(t, hook.Headers, shown.Headers)

	// Postgres cannot store a NUL in jsonb: a clear refusal, not a 500.
	require.Equal(t, http.StatusBadRequest, bundle.call(t, "POST", "/api/events", map[string]any{"event": "User.Created", "data": map[string]any{"id": "a\x00b"}}, &apiErr))
	require.Contains(t, apiErr["error"], `\u0000 (NUL)`)

	var updated outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "PATCH", "/api/hooks/"+hook.ID, map[string]any{"events": []string{"*"}}, &updated))
	require.Equal(t, []string{"*"}, updated.Events)
	require.Equal(t, "crm", updated.Name)

	var hooks []outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "GET", "/api/hooks", nil, &hooks))
	require.Len(t, hooks, 1)

	var published map[string]string
	require.Equal(t, http.StatusCreated, bundle.call(t, "POST", "/api/events", map[string]any{"event": "User.Created", "data": map[string]any{"id": "u1"}}, &published))
	require.Len(t, published["id"], 36)
	rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 1 })
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)

	var deliveries []outbox.Delivery
	require.Equal(t, http.StatusOK, bundle.call(t, "GET", "/api/deliveries?hook="+hook.ID+"&status=succeeded&limit=10", nil, &deliveries))
	require.Len(t, deliveries, 1)
	var delivery outbox.Delivery
	require.Equal(t, http.StatusOK, bundle.call(t, "GET", "/api/deliveries/"+deliveries[0].ID, nil, &delivery))
	require.Len(t, delivery.Attempts, 1)

	require.Equal(t, http.StatusAccepted, bundle.call(t, "POST", "/api/deliveries/"+delivery.ID+"/replay", nil, nil))
	rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 2 })
	require.Equal(t, delivery.ID, rec.all()[1].Header.Get("webhook-id"))
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)

	var replayed map[string]int
	require.Equal(t, http.StatusAccepted, bundle.call(t, "POST", "/api/deliveries/replay", map[string]any{
		"hookId": hook.ID, "since": time.Now().Add(-time.Hour),
	}, &replayed))
	require.Equal(t, 0, replayed["replayed"], "a range replays failed deliveries unless told")
	require.Equal(t, http.StatusAccepted, bundle.call(t, "POST", "/api/deliveries/replay", map[string]any{
		"hookId": hook.ID, "since": time.Now().Add(-time.Hour), "status": "succeeded",
	}, &replayed))
	require.Equal(t, 1, replayed["replayed"])
	rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == 3 })

	var tested outbox.Delivery
	require.Equal(t, http.StatusOK, bundle.call(t, "POST", "/api/hooks/"+hook.ID+"/test", map[string]any{"event": "User.Deleted"}, &tested))
	require.Equal(t, outbox.DeliverySucceeded, tested.Status)

	var stats outbox.HookStats
	require.Eventually(t, func() bool {
		bundle.call(t, "GET", "/api/hooks/"+hook.ID+"/stats", nil, &stats)
		return stats.Requests == 4
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, int64(4), stats.Successes, "the delivery's three requests (replays keep earlier attempts) and the test-send")

	var rotated outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "POST", "/api/hooks/"+hook.ID+"/rotate-key?revealKey=true", map[string]any{"overlap": "1h"}, &rotated))
	require.Equal(t, hook.SigningKey, rotated.PreviousSigningKey)
	var rotatedAgain outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "POST", "/api/hooks/"+hook.ID+"/rotate-key", map[string]any{"overlap": "1h"}, &rotatedAgain))
	require.True(t, strings.HasPrefix(rotatedAgain.SigningKey, "whsec_") && !strings.Contains(rotatedAgain.SigningKey, "****"), "the new key is what rotating is for")
	require.NotEqual(t, rotated.SigningKey, rotatedAgain.SigningKey)
	require.Equal(t, "whsec_****"+rotated.SigningKey[len(rotated.SigningKey)-4:], rotatedAgain.PreviousSigningKey, "the previous one stays redacted")
	require.Equal(t, http.StatusBadRequest, bundle.call(t, "POST", "/api/hooks/"+hook.ID+"/rotate-key", map[string]any{"overlap": "soon"}, &apiErr))

	var disabled outbox.Hook
	require.Equal(t, http.StatusOK, bundle.call(t, "POST", "/api/hooks/"+hook.ID+"/disable", nil, &disabled))
	require.False(t, disabled.Enabled)
	require.Equal(t, http.StatusConflict, bundle.call(t, "POST", "/api/deliveries/"+delivery.ID+"/replay", nil, &apiErr))
	require.Equal(t, http.StatusOK, bundle.call(t, "POST", "/api/hooks/"+hook.ID+"/enable", nil, &disabled))
	require.True(t, disabled.Enabled)

	require.Equal(t, http.StatusOK, bundle.call(t, "DELETE", "/api/hooks/"+hook.ID, nil, nil))
	require.Equal(t, http.StatusNotFound, bundle.call(t, "DELETE", "/api/hooks/"+hook.ID, nil, nil))
}

// TestAPIEvents: the events the console lists are in the API too, with
// where each went.
func TestAPIEvents(t *testing.T) {
	t.Parallel()
	api := setupAPI(t)
	rec := newReceiver(t, nil)
	hook := api.createHook(t, rec.URL, "User.*")
	var published struct{ ID string }
	require.Equal(t, http.StatusCreated, api.call(t, http.MethodPost, "/api/events", map[string]any{"event": "User.Created", "data": map[string]any{"id": "u1"}}, &published))
	time.Sleep(2 * time.Millisecond) // ids order by millisecond
	require.Equal(t, http.StatusCreated, api.call(t, http.MethodPost, "/api/events", map[string]any{"event": "PostSignIn"}, nil))
	rec.waitFor(t, time.Minute, func(r []received) bool { return len(r) == 1 })

	var events []outbox.EventSummary
	require.Equal(t, http.StatusOK, api.call(t, http.MethodGet, "/api/events?type=User.Created", nil, &events))
	require.Len(t, events, 1)
	require.Equal(t, published.ID, events[0].ID)
	require.Eventually(t, func() bool {
		api.call(t, http.MethodGet, "/api/events?type=User.Created", nil, &events)
		return events[0].Deliveries == 1
	}, time.Minute, 50*time.Millisecond)
	require.Equal(t, http.StatusOK, api.call(t, http.MethodGet, "/api/events?limit=1", nil, &events))
	require.Len(t, events, 1)
	require.Equal(t, "PostSignIn", events[0].Type, "newest first")
	var older []outbox.EventSummary
	require.Equal(t, http.StatusOK, api.call(t, http.MethodGet, "/api/events?limit=1&after="+events[0].ID, nil, &older))
	require.Equal(t, published.ID, older[0].ID)

	var event outbox.StoredEvent
	require.Equal(t, http.StatusOK, api.call(t, http.MethodGet, "/api/events/"+published.ID, nil, &event))
	require.JSONEq(t, `{"id": "u1"}`, string(event.Data))
	require.Equal(t, http.StatusNotFound, api.call(t, http.MethodGet, "/api/events/01a223c5-0000-7000-8000-000000000000", nil, nil))

	var deliveries []outbox.Delivery
	require.Equal(t, http.StatusOK, api.call(t, http.MethodGet, "/api/deliveries?event="+published.ID, nil, &deliveries))
	require.Len(t, deliveries, 1)
	require.Equal(t, hook.ID, deliveries[0].HookID)
}
