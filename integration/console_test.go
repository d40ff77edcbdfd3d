package integration

import (
	"context"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// chromium finds the browser: Debian's chromium, which .ci/run installs.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium: CI must run the browser test (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// TestConsoleInBrowser drives the console in headless Chromium as an
// operator does: create a hook in the form, send a test, see a real event's
// delivery in recent requests, open its attempts, replay it, disable the
// hook. HOOKRELAY_CONSOLE_SCREENSHOTS=docs writes the README's screenshots.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	api := setupAPI(t)
	// The receiver's first answer to the real event is a 503 whose body is
	// HTML with a script: the console must show it as text.
	const hostile = `<script>document.title="pwned"</script><b>busy</b>`
	// Its first request is the test-send; its second, the real event's
	// first attempt, is answered 503 with that body.
	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(hostile))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminToken))
	require.NoError(t, chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		if _, err := cdp.Call(ctx, target, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, target, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
		return err
	})))
	step := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(t, chromedp.Do(stepCtx, actions...))
	}
	text := func(selector string) string {
		t.Helper()
		value, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
		require.NoError(t, err)
		return value
	}
	screenshot := func(name string) {
		t.Helper()
		dir := os.Getenv("HOOKRELAY_CONSOLE_SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644)) //nolint:gosec // a picture for the README
	}

	// Create a hook in the form.
	step(chromedp.Navigate(api.url+"/console/"),
		chromedp.SetValue(chromedp.CSS(`input[name=name]`), "crm"),
		chromedp.SetValue(chromedp.CSS(`input[name=url]`), rec.URL+"/hooks"),
		chromedp.SetValue(chromedp.CSS(`textarea[name=events]`), "User.*\nPostSignIn"),
		chromedp.SetValue(chromedp.CSS(`textarea[name=headers]`), "X-Team: identity"),
		chromedp.Click(chromedp.CSS(`form[action="/console/hooks"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	require.Contains(t, text("h1"), "crm")
	hooks, err := api.store.ListHooks(context.Background())
	require.NoError(t, err)
	require.Len(t, hooks, 1)
	hook := hooks[0]
	require.Equal(t, []string{"User.*", "PostSignIn"}, hook.Events)
	require.Equal(t, map[string]string{"X-Team": "identity"}, hook.Headers)
	location, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, api.url+"/console/hooks/"+hook.ID+"?notice=created", location)
	require.NotContains(t, pageHTML(t, ctx), hook.SigningKey, "the key is shown on request only")

	// Send a test: it arrives, and the page says how it went.
	step(chromedp.Click(chromedp.CSS(`form[action$="/test"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`section.result`)))
	require.Contains(t, text("section.result"), "succeeded")
	require.Contains(t, text("section.result"), "HTTP 204")
	require.Len(t, rec.all(), 1)

	// A real event: its first attempt fails with the hostile answer, the
	// retry succeeds; both are in recent requests and the delivery's page.
	_, err = api.store.Publish(context.Background(), &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u1"}})
	require.NoError(t, err)
	rec.waitFor(t, time.Minute, func(r []received) bool { return len(r) >= 3 })
	var delivery *outbox.Delivery
	require.Eventually(t, func() bool {
		list, err := api.store.ListDeliveries(context.Background(), &outbox.DeliveryFilter{HookID: hook.ID, Status: outbox.DeliverySucceeded})
		require.NoError(t, err)
		for _, d := range list {
			if d.EventType == "User.Created" {
				delivery = d
			}
		}
		return delivery != nil
	}, time.Minute, 50*time.Millisecond)
	step(chromedp.Navigate(api.url+"/console/hooks/"+hook.ID),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/deliveries/`+delivery.ID+`"]`)))
	screenshot("console-hook.png")
	step(chromedp.Click(chromedp.CSS(`a[href="/console/deliveries/`+delivery.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section.attempt`)))
	attempts := text("main")
	require.Contains(t, attempts, "Attempt 1: HTTP 503")
	require.Contains(t, attempts, "Attempt 2: HTTP 204")
	require.Contains(t, attempts, hostile, "the receiver's answer is shown as text")
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	require.NotEqual(t, "pwned", title, "no script of a receiver runs")
	// The signatures are those the receiver got.
	var sent []received
	for _, r := range rec.all() {
		if r.Header.Get("webhook-id") == delivery.ID {
			sent = append(sent, r)
		}
	}
	require.Len(t, sent, 2)
	for _, r := range sent {
		require.Contains(t, attempts, r.Header.Get("webhook-signature"))
		require.Contains(t, attempts, r.Header.Get("logto-signature-sha-256"))
	}
	require.NotContains(t, pageHTML(t, ctx), hook.SigningKey)
	require.Contains(t, text("dl"), "job ", "a link to its River job")
	screenshot("console-delivery.png")

	// Replay it: a third request with the same webhook-id.
	step(chromedp.Click(chromedp.CSS(`form[action$="/replay"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	rec.waitFor(t, time.Minute, func(r []received) bool {
		n := 0
		for _, req := range r {
			if req.Header.Get("webhook-id") == delivery.ID {
				n++
			}
		}
		return n == 3
	})

	// Reveal the key on request: it is in the page, not in the URL.
	step(chromedp.Navigate(api.url+"/console/hooks/"+hook.ID),
		chromedp.Click(chromedp.CSS(`form[action$="/reveal-key"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`code.secret`)))
	require.Equal(t, hook.SigningKey, text("code.secret"))
	location, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.NotContains(t, location, hook.SigningKey)

	// Disable the hook.
	step(chromedp.Navigate(api.url+"/console/hooks/"+hook.ID),
		chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	require.Contains(t, text("h1"), "disabled")
	disabled, err := api.store.GetHook(context.Background(), hook.ID)
	require.NoError(t, err)
	require.False(t, disabled.Enabled)

	// The events page shows the event and where it went.
	step(chromedp.Navigate(api.url+"/console/events"),
		chromedp.Click(chromedp.CSS(`a[href="/console/events/`+delivery.EventID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/deliveries/`+delivery.ID+`"]`)))
	require.Contains(t, text("main"), "crm")
}

func pageHTML(t *testing.T, ctx context.Context) string {
	t.Helper()
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	require.NoError(t, err)
	return html
}

// TestConsoleIsSafe: the console's answers carry strict security headers, a
// form without the console's token is refused, the browser pages need the
// token, and no page holds a key unasked.
func TestConsoleIsSafe(t *testing.T) {
	t.Parallel()
	api := setupAPI(t)
	hook := api.createHook(t, "https://example.com/hook", "*")
	get := func(path, user, password string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, api.url+path, nil)
		require.NoError(t, err)
		if password != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	resp := get("/console/", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, `Basic realm="hookrelay"`, resp.Header.Get("WWW-Authenticate"))
	require.Equal(t, http.StatusUnauthorized, get("/console/", "admin", "wrong").StatusCode)

	for _, path := range []string{"/console/", "/console/hooks/" + hook.ID, "/console/events", "/console/hooks/nope"} {
		resp := get(path, "admin", adminToken)
		require.Contains(t, []int{http.StatusOK, http.StatusNotFound}, resp.StatusCode, path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'", path)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
	}
	require.Equal(t, http.StatusNotFound, get("/console/hooks/nope", "admin", adminToken).StatusCode)

	// The hooks page pages by 50, each hook with its numbers.
	for range 50 {
		api.createHook(t, "https://example.com/more", "*")
	}
	body := func(resp *http.Response) string {
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	first := body(get("/console/", "admin", adminToken))
	require.Equal(t, 50, strings.Count(first, `<a href="/console/hooks/`))
	next := regexp.MustCompile(`<a href="(\?after=[^"]+)">More hooks</a>`).FindStringSubmatch(first)
	require.NotNil(t, next)
	second := body(get("/console/"+html.UnescapeString(next[1]), "admin", adminToken))
	require.Equal(t, 1, strings.Count(second, `<a href="/console/hooks/`))
	require.NotContains(t, first+second, hook.SigningKey)

	// A form posted without the token changes nothing, from this origin or
	// another.
	post := func(path string, form url.Values, headers map[string]string) int {
		req, err := http.NewRequest(http.MethodPost, api.url+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("admin", adminToken)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, post("/console/hooks/"+hook.ID+"/disable", url.Values{}, nil))
	require.Equal(t, http.StatusForbidden, post("/console/hooks/"+hook.ID+"/disable", url.Values{"csrf": {"guess"}}, nil))
	require.Equal(t, http.StatusForbidden, post("/console/hooks/"+hook.ID+"/disable", url.Values{}, map[string]string{
		"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site",
	}))
	still, err := api.store.GetHook(context.Background(), hook.ID)
	require.NoError(t, err)
	require.True(t, still.Enabled)
}
