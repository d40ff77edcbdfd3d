package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// The console is server-rendered HTML behind the admin token, like River's
// UI: it needs no JavaScript, and every page reads and writes through the
// same store and relay calls as the API and the CLI.

//go:embed console
var consoleFiles embed.FS

// consolePageSize is how many rows a console list shows per page.
const consolePageSize = 50

// consoleCSP allows the console's own stylesheet and forms, and nothing else:
// no script, no framing, no form posting elsewhere.
const consoleCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

type console struct {
	relay *jobs.Relay
	store *outbox.Store
	// csrf is the token every form carries: an HMAC of a fixed message keyed
	// with the admin token, so that every process knows it and no page of
	// another site can.
	csrf  string
	pages map[string]*template.Template
	fail  func(w http.ResponseWriter, r *http.Request, err error)
}

func newConsole(relay *jobs.Relay, adminToken []byte, fail func(http.ResponseWriter, *http.Request, error)) (*console, error) {
	mac := hmac.New(sha256.New, adminToken)
	mac.Write([]byte("hookrelay console csrf v1"))
	c := &console{
		relay: relay,
		store: relay.Store(),
		csrf:  hex.EncodeToString(mac.Sum(nil)),
		pages: map[string]*template.Template{},
		fail:  fail,
	}
	funcs := template.FuncMap{
		"time":      formatTime,
		"future":    func(t *time.Time) bool { return t != nil && time.Now().Before(*t) },
		"rate":      successRate,
		"join":      strings.Join,
		"pretty":    prettyJSON,
		"deref":     func(p *int) int { return *p },
		"headers":   headerLines,
		"jobURL":    func(job *rivertype.JobRow) string { return fmt.Sprintf("/riverui/jobs/%d", job.ID) },
		"statusTag": statusTag,
		"count":     count,
	}
	for _, name := range []string{"hooks", "hook", "delivery", "events", "event", "error"} {
		page, err := template.New("layout.html").Funcs(funcs).ParseFS(consoleFiles, "console/layout.html", "console/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse console page %s: %w", name, err)
		}
		c.pages[name] = page
	}
	return c, nil
}

// routeConsole mounts the console under /console/, behind the admin token.
func (s *Server) routeConsole(c *console) {
	static, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		panic(err) // embedded at build time
	}
	routes := map[string]http.HandlerFunc{
		"GET /console/{$}":                     c.hooks,
		"POST /console/hooks":                  c.createHook,
		"GET /console/hooks/{id}":              c.hook,
		"POST /console/hooks/{id}":             c.updateHook,
		"POST /console/hooks/{id}/enable":      c.enableHook,
		"POST /console/hooks/{id}/disable":     c.disableHook,
		"POST /console/hooks/{id}/reveal-key":  c.revealKey,
		"POST /console/hooks/{id}/rotate-key":  c.rotateKey,
		"POST /console/hooks/{id}/test":        c.testHook,
		"POST /console/hooks/{id}/replay":      c.replayRange,
		"GET /console/deliveries/{id}":         c.delivery,
		"POST /console/deliveries/{id}/replay": c.replayDelivery,
		"GET /console/events":                  c.events,
		"GET /console/events/{id}":             c.event,
		"GET /console/static/":                 http.StripPrefix("/console/static/", http.FileServerFS(static)).ServeHTTP,
		"/console/":                            func(w http.ResponseWriter, r *http.Request) { c.fail(w, r, errConsoleNotFound) },
	}
	for pattern, handle := range routes {
		s.mux.Handle(pattern, s.authorizeBrowser(consoleHeaders(c.checkCSRF(handle))))
	}
}

var (
	errConsoleNotFound = errors.New("no such page")
	errBadCSRF         = errors.New("the form is stale or comes from another site: reload the page and send it again")
)

// consoleHeaders sets the console's security headers on every answer.
func consoleHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// checkCSRF refuses a POST without the console's token; cross-origin
// protection has refused cross-site ones already, this covers browsers that
// send neither Origin nor Sec-Fetch-Site.
func (c *console) checkCSRF(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, requestBodyMaxBytes)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.csrf)) != 1 {
				c.render(w, r, "error", &errorPage{page: page{status: http.StatusForbidden}, Message: errBadCSRF.Error()})
				return
			}
		}
		next(w, r)
	}
}

// page is what every console page has.
type page struct {
	Title string
	CSRF  string
	// Notice and Error are one-line messages above the page.
	Notice string
	Error  string
	// status is the answer's HTTP status; 0 is 200.
	status int
}

func (p *page) base() *page { return p }

type pageData interface{ base() *page }

func (c *console) render(w http.ResponseWriter, r *http.Request, name string, data pageData) {
	data.base().CSRF = c.csrf
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, data); err != nil {
		c.fail(w, r, fmt.Errorf("render console page %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(cmp.Or(data.base().status, http.StatusOK))
	_, _ = buf.WriteTo(w)
}

// redirect answers a form with the page to show next (post/redirect/get);
// notice is one of consoleNotices' keys, never text from the request.
func redirect(w http.ResponseWriter, r *http.Request, path, notice string) {
	if notice != "" {
		path += "?notice=" + notice
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

var consoleNotices = map[string]string{ //nolint:gochecknoglobals // a read-only table
	"created":  "Hook created. Its signing key is shown on request below.",
	"updated":  "Hook saved.",
	"enabled":  "Hook enabled.",
	"disabled": "Hook disabled: its pending deliveries are canceled.",
	"replayed": "Delivery queued again, with the same webhook-id.",
}

func notice(r *http.Request) string { return consoleNotices[r.URL.Query().Get("notice")] }

// errorPage is a page that only says what went wrong.
type errorPage struct {
	page
	Message string
}

// hookRow is a hook of the hooks page, with its last 24 hours.
type hookRow struct {
	*outbox.Hook
	Stats       *outbox.HookStats
	LastFailure *outbox.Delivery
}

type hooksPage struct {
	page
	Hooks    []*hookRow
	NextPage string
	Form     hookForm
}

// hookForm is the create and edit form's fields, as typed.
type hookForm struct {
	Name, URL, Events, Headers, TenantID, RateLimit, RateBurst, Ordering, Filter string
}

// burst is the form's burst, as a number: 0 when empty.
func (f *hookForm) burst() (int, error) {
	if f.RateBurst == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(f.RateBurst)
	if err != nil {
		return 0, &outbox.ValidationError{Field: "burst", Reason: fmt.Sprintf("%q: give a whole number", f.RateBurst)}
	}
	return n, nil
}

func (c *console) hooks(w http.ResponseWriter, r *http.Request) {
	c.hooksWith(w, r, &hooksPage{page: page{Notice: notice(r)}})
}

func (c *console) hooksWith(w http.ResponseWriter, r *http.Request, data *hooksPage) {
	ctx := r.Context()
	hooks, err := c.store.ListHooks(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// Hooks come in id order: a page is the ones after ?after=.
	if after := r.URL.Query().Get("after"); after != "" {
		hooks = slices.DeleteFunc(hooks, func(h *outbox.Hook) bool { return h.ID <= after })
	}
	if len(hooks) > consolePageSize {
		hooks = hooks[:consolePageSize]
		data.NextPage = "?" + url.Values{"after": {hooks[len(hooks)-1].ID}}.Encode()
	}
	ids := make([]string, len(hooks))
	for i, hook := range hooks {
		ids[i] = hook.ID
	}
	stats, err := c.store.HookStatsMany(ctx, ids)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	failures, err := c.store.LastFailedDeliveries(ctx, ids)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, hook := range hooks {
		data.Hooks = append(data.Hooks, &hookRow{Hook: hook.Redacted(), Stats: stats[hook.ID], LastFailure: failures[hook.ID]})
	}
	data.Title = "Hooks"
	c.render(w, r, "hooks", data)
}

func (c *console) createHook(w http.ResponseWriter, r *http.Request) {
	form := readHookForm(r)
	headers, err := outbox.ParseHeaders(lines(form.Headers))
	var burst int
	if err == nil {
		burst, err = form.burst()
	}
	var hook *outbox.Hook
	if err == nil {
		hook, err = c.store.CreateHook(r.Context(), &outbox.HookParams{
			Name: form.Name, URL: form.URL, Events: eventList(form.Events), Headers: headers, TenantID: form.TenantID,
			RateLimit: form.RateLimit, RateBurst: burst, Ordering: form.Ordering, Filter: form.Filter,
		})
	}
	if invalid := validationMessage(err); invalid != "" {
		c.hooksWith(w, r, &hooksPage{page: page{Error: invalid, status: http.StatusUnprocessableEntity}, Form: form})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/hooks/"+hook.ID, "created")
}

func readHookForm(r *http.Request) hookForm {
	return hookForm{
		Name:      strings.TrimSpace(r.PostFormValue("name")),
		URL:       strings.TrimSpace(r.PostFormValue("url")),
		Events:    r.PostFormValue("events"),
		Headers:   r.PostFormValue("headers"),
		TenantID:  strings.TrimSpace(r.PostFormValue("tenant")),
		RateLimit: strings.TrimSpace(r.PostFormValue("rate")),
		RateBurst: strings.TrimSpace(r.PostFormValue("burst")),
		Ordering:  r.PostFormValue("ordering"),
		Filter:    strings.TrimSpace(r.PostFormValue("filter")),
	}
}

// lines splits a textarea into its non-empty lines, trimmed.
func lines(text string) []string {
	return fields(text, "\n")
}

// eventList splits the events field at line ends and commas.
func eventList(text string) []string {
	return fields(text, "\n,")
}

func fields(text, separators string) []string {
	var out []string
	for _, field := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune(separators, r) }) {
		if field = strings.TrimSpace(field); field != "" {
			out = append(out, field)
		}
	}
	return out
}

func validationMessage(err error) string {
	var invalid *outbox.ValidationError
	if errors.As(err, &invalid) {
		return invalid.Error()
	}
	return ""
}

type hookPage struct {
	page
	Hook  *outbox.Hook
	Stats *outbox.HookStats
	Form  hookForm
	// RevealedKey is shown after a reveal or a rotation, never otherwise.
	RevealedKey string
	Rotated     bool
	Test        *outbox.Delivery
	TestError   string
	// The deliveries list, filtered by Status, a page after After.
	Status     string
	Statuses   []string
	Deliveries []*outbox.Delivery
	NextPage   string
	// Since and Until are the replay form's range, as typed.
	Since, Until string
}

func (c *console) hook(w http.ResponseWriter, r *http.Request) {
	c.hookWith(w, r, &hookPage{page: page{Notice: notice(r)}})
}

// hookWith renders the hook page with data's messages and results.
func (c *console) hookWith(w http.ResponseWriter, r *http.Request, data *hookPage) {
	ctx := r.Context()
	hook, err := c.store.GetHook(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if data.Stats, err = c.store.HookStats(ctx, hook.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	query := r.URL.Query()
	data.Status = query.Get("status")
	data.Deliveries, err = c.store.ListDeliveries(ctx, &outbox.DeliveryFilter{
		HookID: hook.ID, Status: data.Status, After: query.Get("after"), Max: consolePageSize,
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(data.Deliveries) == consolePageSize {
		data.NextPage = "?" + url.Values{"status": {data.Status}, "after": {data.Deliveries[len(data.Deliveries)-1].ID}}.Encode()
	}
	data.Statuses = []string{outbox.DeliveryPending, outbox.DeliverySucceeded, outbox.DeliveryFailed, outbox.DeliveryCanceled}
	if data.Form == (hookForm{}) {
		data.Form = hookForm{
			Name: hook.Name, URL: hook.URL, Events: strings.Join(hook.Events, "\n"),
			Headers: headerLines(hook.Redacted().Headers), TenantID: hook.TenantID,
			RateLimit: hook.RateLimit, RateBurst: strconv.Itoa(hook.RateBurst), Ordering: hook.Ordering, Filter: hook.Filter,
		}
	}
	if data.Since == "" {
		now := time.Now().UTC()
		data.Since, data.Until = now.Add(-24*time.Hour).Format(formInputTime), now.Add(time.Minute).Format(formInputTime)
	}
	data.Hook = hook.Redacted()
	data.Title = "Hook " + hook.Name
	c.render(w, r, "hook", data)
}

// keepRedactedHeaders keeps the value of each of headers that the form sent
// back as the hook page showed it, redacted: an edit of the URL must not
// replace an Authorization header by its redacted form.
func keepRedactedHeaders(ctx context.Context, store *outbox.Store, hookID string, headers map[string]string) error {
	hook, err := store.GetHook(ctx, hookID)
	if err != nil {
		return err
	}
	for name, value := range headers {
		if current, ok := hook.Headers[name]; ok && value == outbox.RedactHeaderValue(current) {
			headers[name] = current
		}
	}
	return nil
}

// formInputTime is the format of a datetime-local input.
const formInputTime = "2006-01-02T15:04"

func (c *console) updateHook(w http.ResponseWriter, r *http.Request) {
	form := readHookForm(r)
	headers, err := outbox.ParseHeaders(lines(form.Headers))
	if err == nil {
		err = keepRedactedHeaders(r.Context(), c.store, r.PathValue("id"), headers)
	}
	var burst int
	if err == nil {
		burst, err = form.burst()
	}
	if err == nil {
		_, err = c.store.UpdateHook(r.Context(), r.PathValue("id"), &outbox.HookUpdate{
			Name: &form.Name, URL: &form.URL, Events: eventList(form.Events), Headers: headers, TenantID: &form.TenantID,
			RateLimit: &form.RateLimit, RateBurst: &burst, Ordering: &form.Ordering, Filter: &form.Filter,
		})
	}
	c.after(w, r, err, "updated", &hookPage{Form: form})
}

func (c *console) enableHook(w http.ResponseWriter, r *http.Request) {
	_, err := c.store.EnableHook(r.Context(), r.PathValue("id"))
	c.after(w, r, err, "enabled", &hookPage{})
}

func (c *console) disableHook(w http.ResponseWriter, r *http.Request) {
	_, err := c.store.DisableHook(r.Context(), r.PathValue("id"), outbox.DisabledByOperator)
	c.after(w, r, err, "disabled", &hookPage{})
}

// after ends a hook form: back to the hook page with notice, or the page
// again with the form as typed and what was wrong with it.
func (c *console) after(w http.ResponseWriter, r *http.Request, err error, notice string, data *hookPage) {
	if invalid := validationMessage(err); invalid != "" {
		data.Error, data.status = invalid, http.StatusUnprocessableEntity
		c.hookWith(w, r, data)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/hooks/"+r.PathValue("id"), notice)
}

// revealKey shows the signing key in the page answering the form, so that it
// is never in a URL, a history entry or a cache.
func (c *console) revealKey(w http.ResponseWriter, r *http.Request) {
	hook, err := c.store.GetHook(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.hookWith(w, r, &hookPage{RevealedKey: hook.SigningKey})
}

func (c *console) rotateKey(w http.ResponseWriter, r *http.Request) {
	overlap := outbox.RotateOverlapDefault
	if value := r.PostFormValue("overlap"); value != "" {
		var err error
		if overlap, err = time.ParseDuration(value); err != nil || overlap < 0 {
			c.hookWith(w, r, &hookPage{page: page{
				Error:  fmt.Sprintf("invalid overlap %q: give a Go duration such as 24h, or 0s to stop the old key at once", value),
				status: http.StatusUnprocessableEntity,
			}})
			return
		}
	}
	hook, err := c.store.RotateHookKey(r.Context(), r.PathValue("id"), overlap)
	if err != nil {
		c.after(w, r, err, "", &hookPage{})
		return
	}
	c.hookWith(w, r, &hookPage{RevealedKey: hook.SigningKey, Rotated: true})
}

func (c *console) testHook(w http.ResponseWriter, r *http.Request) {
	delivery, err := c.relay.TestHook(r.Context(), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("event")))
	data := &hookPage{Test: delivery}
	switch {
	case errors.Is(err, jobs.ErrTestNotSent):
		data.TestError = err.Error()
	case validationMessage(err) != "":
		data.Error, data.status = validationMessage(err), http.StatusUnprocessableEntity
	case err != nil:
		c.fail(w, r, err)
		return
	}
	c.hookWith(w, r, data)
}

func (c *console) replayRange(w http.ResponseWriter, r *http.Request) {
	data := &hookPage{Since: r.PostFormValue("since"), Until: r.PostFormValue("until")}
	since, err1 := time.Parse(formInputTime, data.Since)
	until, err2 := time.Parse(formInputTime, data.Until)
	if err1 != nil || err2 != nil {
		data.Error, data.status = "give the range to replay as two times, such as 2026-01-02T15:04 (UTC)", http.StatusUnprocessableEntity
		c.hookWith(w, r, data)
		return
	}
	n, err := c.relay.ReplayRange(r.Context(), &outbox.ReplayRange{
		HookID: r.PathValue("id"), Since: since, Until: until, Status: r.PostFormValue("status"),
	})
	switch {
	case errors.Is(err, jobs.ErrHookDisabled), validationMessage(err) != "":
		data.Error, data.status = cmp.Or(validationMessage(err), err.Error()), http.StatusUnprocessableEntity
	case err != nil:
		c.fail(w, r, err)
		return
	default:
		data.Notice = count(int64(n), "delivery", "deliveries") + " queued again, each with its own webhook-id."
	}
	c.hookWith(w, r, data)
}

// attemptRow is an attempt of the delivery page with the headers it was
// sent with, when they are known.
type attemptRow struct {
	*outbox.Attempt
	Headers []header
}

type header struct{ Name, Value string }

type deliveryPage struct {
	page
	Delivery *outbox.Delivery
	Hook     *outbox.Hook
	Attempts []*attemptRow
	// Jobs are the River jobs that carried it, linked to River's UI.
	Jobs []*rivertype.JobRow
}

func (c *console) delivery(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	delivery, err := c.store.GetDelivery(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	hook, err := c.store.GetHook(ctx, delivery.HookID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := &deliveryPage{page: page{Title: "Delivery " + delivery.ID, Notice: notice(r)}, Delivery: delivery, Hook: hook.Redacted()}
	custom := map[string]bool{}
	for name := range hook.Headers {
		custom[http.CanonicalHeaderKey(name)] = true
	}
	for _, attempt := range delivery.Attempts {
		row := &attemptRow{Attempt: attempt}
		if sent, ok := outbox.SentHeaders(hook, delivery.ID, attempt.CreatedAt, delivery.Body); ok {
			for _, name := range slices.Sorted(maps.Keys(sent)) {
				value := sent.Get(name)
				if custom[name] {
					value = outbox.RedactHeaderValue(value)
				}
				row.Headers = append(row.Headers, header{Name: name, Value: value})
			}
		}
		data.Attempts = append(data.Attempts, row)
	}
	if data.Jobs, err = c.relay.DeliveryJobs(ctx, delivery.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "delivery", data)
}

func (c *console) replayDelivery(w http.ResponseWriter, r *http.Request) {
	err := c.relay.ReplayDelivery(r.Context(), r.PathValue("id"))
	if errors.Is(err, jobs.ErrDeliveryPending) || errors.Is(err, jobs.ErrHookDisabled) {
		c.render(w, r, "error", &errorPage{page: page{Title: "Replay", status: http.StatusConflict}, Message: err.Error()})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/deliveries/"+r.PathValue("id"), "replayed")
}

type eventsPage struct {
	page
	Type     string
	Events   []*outbox.EventSummary
	NextPage string
}

func (c *console) events(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	data := &eventsPage{page: page{Title: "Events"}, Type: strings.TrimSpace(query.Get("type"))}
	var err error
	data.Events, err = c.store.ListEvents(r.Context(), &outbox.EventFilter{Type: data.Type, After: query.Get("after"), Max: consolePageSize})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(data.Events) == consolePageSize {
		data.NextPage = "?" + url.Values{"type": {data.Type}, "after": {data.Events[len(data.Events)-1].ID}}.Encode()
	}
	c.render(w, r, "events", data)
}

type eventPage struct {
	page
	Event      *outbox.StoredEvent
	Deliveries []*outbox.Delivery
	HookNames  map[string]string
}

func (c *console) event(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	event, err := c.store.GetEvent(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := &eventPage{page: page{Title: "Event " + event.Type}, Event: event, HookNames: map[string]string{}}
	if data.Deliveries, err = c.store.ListDeliveries(ctx, &outbox.DeliveryFilter{EventID: event.ID, Max: 1000}); err != nil {
		c.fail(w, r, err)
		return
	}
	hooks, err := c.store.ListHooks(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, hook := range hooks {
		data.HookNames[hook.ID] = hook.Name
	}
	c.render(w, r, "event", data)
}

func formatTime(t any) string {
	switch t := t.(type) {
	case time.Time:
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if t != nil {
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		}
	}
	return ""
}

func successRate(stats *outbox.HookStats) string {
	if stats.Requests == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(stats.Successes)/float64(stats.Requests))
}

// prettyJSON indents a JSON body for reading; it is escaped by the template.
func prettyJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func headerLines(headers map[string]string) string {
	lines := make([]string, 0, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		lines = append(lines, name+": "+headers[name])
	}
	return strings.Join(lines, "\n")
}

// statusTag is the CSS class of a delivery status or an HTTP status code.
func statusTag(status any) string {
	switch s := status.(type) {
	case string:
		return "status-" + s
	case *int:
		if s != nil && *s >= 200 && *s < 300 {
			return "status-succeeded"
		}
	}
	return "status-failed"
}

// count is n with the noun it counts: 1 delivery, 2 deliveries.
func count(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}
