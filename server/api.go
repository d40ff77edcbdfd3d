package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// requestBodyMaxBytes bounds an admin API request.
const requestBodyMaxBytes = 1 << 20

func (s *Server) routeAPI() {
	routes := map[string]func(*http.Request) (int, any, error){
		"GET /api/hooks":                   s.listHooks,
		"POST /api/hooks":                  s.createHook,
		"GET /api/hooks/{id}":              s.showHook,
		"PATCH /api/hooks/{id}":            s.updateHook,
		"DELETE /api/hooks/{id}":           s.deleteHook,
		"POST /api/hooks/{id}/enable":      s.enableHook,
		"POST /api/hooks/{id}/disable":     s.disableHook,
		"POST /api/hooks/{id}/rotate-key":  s.rotateHookKey,
		"POST /api/hooks/{id}/test":        s.testHook,
		"GET /api/hooks/{id}/stats":        s.hookStats,
		"GET /api/deliveries":              s.listDeliveries,
		"GET /api/deliveries/{id}":         s.showDelivery,
		"POST /api/deliveries/{id}/replay": s.replayDelivery,
		"POST /api/deliveries/replay":      s.replayRange,
		"POST /api/events":                 s.publish,
		"GET /api/events":                  s.listEvents,
		"GET /api/events/{id}":             s.showEvent,
	}
	for pattern, handle := range routes {
		s.mux.Handle(pattern, s.authorizeAPI(jsonBodiesOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, requestBodyMaxBytes)
			status, body, err := handle(r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			writeJSON(w, status, redactKeys(r, body))
		}))))
	}
	s.mux.Handle("/api/", s.authorizeAPI(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API route"})
	})))
}

// hookRequest is the JSON of a hook to create or update; absent fields are
// left as they are on update.
type hookRequest struct {
	Name     *string           `json:"name"`
	URL      *string           `json:"url"`
	Events   []string          `json:"events"`
	Headers  map[string]string `json:"headers"`
	TenantID *string           `json:"tenantId"`
	Enabled  *bool             `json:"enabled"`
	// RateLimit is N/s or N/m; "" removes it.
	RateLimit *string `json:"rateLimit"`
	RateBurst *int    `json:"rateBurst"`
	// Filter is a SQL/JSON path predicate; "" removes it.
	Filter *string `json:"filter"`
	// Ordering is "subject" or "none".
	Ordering *string `json:"ordering"`
}

func (s *Server) listHooks(r *http.Request) (int, any, error) {
	hooks, err := s.relay.Store().ListHooks(r.Context())
	return http.StatusOK, hooks, err
}

func (s *Server) createHook(r *http.Request) (int, any, error) {
	var req hookRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	hook, err := s.relay.Store().CreateHook(r.Context(), &outbox.HookParams{
		Name:      deref(req.Name),
		URL:       deref(req.URL),
		Events:    req.Events,
		Headers:   req.Headers,
		TenantID:  deref(req.TenantID),
		RateLimit: deref(req.RateLimit),
		RateBurst: deref(req.RateBurst),
		Filter:    deref(req.Filter),
		Ordering:  deref(req.Ordering),
		Disabled:  req.Enabled != nil && !*req.Enabled,
	})
	return http.StatusCreated, hook, err
}

func (s *Server) showHook(r *http.Request) (int, any, error) {
	hook, err := s.relay.Store().GetHook(r.Context(), r.PathValue("id"))
	return http.StatusOK, hook, err
}

func (s *Server) updateHook(r *http.Request) (int, any, error) {
	var req hookRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	ctx := r.Context()
	hook, err := s.relay.Store().UpdateHook(ctx, r.PathValue("id"), &outbox.HookUpdate{
		Name:      req.Name,
		URL:       req.URL,
		Events:    req.Events,
		Headers:   req.Headers,
		TenantID:  req.TenantID,
		RateLimit: req.RateLimit,
		RateBurst: req.RateBurst,
		Filter:    req.Filter,
		Ordering:  req.Ordering,
	})
	if err == nil && req.Enabled != nil {
		if *req.Enabled {
			hook, err = s.relay.Store().EnableHook(ctx, hook.ID)
		} else {
			hook, err = s.relay.Store().DisableHook(ctx, hook.ID, outbox.DisabledByOperator)
		}
	}
	return http.StatusOK, hook, err
}

func (s *Server) deleteHook(r *http.Request) (int, any, error) {
	err := s.relay.Store().DeleteHook(r.Context(), r.PathValue("id"))
	return http.StatusOK, map[string]bool{"deleted": true}, err
}

func (s *Server) enableHook(r *http.Request) (int, any, error) {
	hook, err := s.relay.Store().EnableHook(r.Context(), r.PathValue("id"))
	return http.StatusOK, hook, err
}

func (s *Server) disableHook(r *http.Request) (int, any, error) {
	hook, err := s.relay.Store().DisableHook(r.Context(), r.PathValue("id"), outbox.DisabledByOperator)
	return http.StatusOK, hook, err
}

func (s *Server) rotateHookKey(r *http.Request) (int, any, error) {
	var req struct {
		Overlap *string `json:"overlap"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	overlap := outbox.RotateOverlapDefault
	if req.Overlap != nil {
		var err error
		if overlap, err = time.ParseDuration(*req.Overlap); err != nil {
			return 0, nil, &outbox.ValidationError{Field: "overlap", Reason: fmt.Sprintf("%q is not a Go duration such as 24h", *req.Overlap)}
		}
	}
	hook, err := s.relay.Store().RotateHookKey(r.Context(), r.PathValue("id"), overlap)
	return http.StatusOK, hook, err
}

func (s *Server) testHook(r *http.Request) (int, any, error) {
	var req struct {
		Event string `json:"event"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	delivery, err := s.relay.TestHook(r.Context(), r.PathValue("id"), req.Event)
	return http.StatusOK, delivery, err
}

func (s *Server) hookStats(r *http.Request) (int, any, error) {
	stats, err := s.relay.Store().HookStats(r.Context(), r.PathValue("id"))
	return http.StatusOK, stats, err
}

func (s *Server) listDeliveries(r *http.Request) (int, any, error) {
	query := r.URL.Query()
	filter := &outbox.DeliveryFilter{HookID: query.Get("hook"), EventID: query.Get("event"), Status: query.Get("status"), After: query.Get("after")}
	var err error
	if filter.Max, err = queryLimit(r); err != nil {
		return 0, nil, err
	}
	deliveries, err := s.relay.Store().ListDeliveries(r.Context(), filter)
	return http.StatusOK, deliveries, err
}

// queryLimit reads ?limit=, 0 when absent.
func queryLimit(r *http.Request) (int, error) {
	limit := r.URL.Query().Get("limit")
	if limit == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(limit)
	if err != nil {
		return 0, &outbox.ValidationError{Field: "limit", Reason: fmt.Sprintf("%q is not a number", limit)}
	}
	return n, nil
}

func (s *Server) listEvents(r *http.Request) (int, any, error) {
	query := r.URL.Query()
	filter := &outbox.EventFilter{Type: query.Get("type"), After: query.Get("after")}
	var err error
	if filter.Max, err = queryLimit(r); err != nil {
		return 0, nil, err
	}
	events, err := s.relay.Store().ListEvents(r.Context(), filter)
	return http.StatusOK, events, err
}

func (s *Server) showEvent(r *http.Request) (int, any, error) {
	event, err := s.relay.Store().GetEvent(r.Context(), r.PathValue("id"))
	return http.StatusOK, event, err
}

func (s *Server) showDelivery(r *http.Request) (int, any, error) {
	delivery, err := s.relay.Store().GetDelivery(r.Context(), r.PathValue("id"))
	return http.StatusOK, delivery, err
}

func (s *Server) replayDelivery(r *http.Request) (int, any, error) {
	err := s.relay.ReplayDelivery(r.Context(), r.PathValue("id"))
	return http.StatusAccepted, map[string]int{"replayed": 1}, err
}

func (s *Server) replayRange(r *http.Request) (int, any, error) {
	var req struct {
		HookID string    `json:"hookId"`
		Since  time.Time `json:"since"`
		Until  time.Time `json:"until"`
		Status string    `json:"status"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	n, err := s.relay.ReplayRange(r.Context(), &outbox.ReplayRange{
		HookID: req.HookID, Since: req.Since, Until: req.Until, Status: req.Status,
	})
	return http.StatusAccepted, map[string]int{"replayed": n}, err
}

func (s *Server) publish(r *http.Request) (int, any, error) {
	var req struct {
		Event    string         `json:"event"`
		Data     any            `json:"data"`
		Context  map[string]any `json:"context"`
		TenantID string         `json:"tenantId"`
		Subject  string         `json:"subject"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	id, err := s.relay.Store().Publish(r.Context(), &outbox.Event{
		Type: req.Event, Data: req.Data, Context: req.Context, TenantID: req.TenantID, Subject: req.Subject,
	})
	return http.StatusCreated, map[string]string{"id": id}, err
}

// decode reads a JSON request body; an empty body is an empty object.
// redactKeys cuts the signing keys of the hooks in body, unless the request
// creates the hook or asks with ?revealKey=true: keys are shown on creation
// and on request only.
func redactKeys(r *http.Request, body any) any {
	if r.Method == http.MethodPost && r.URL.Path == "/api/hooks" || r.URL.Query().Get("revealKey") == "true" {
		return body
	}
	switch v := body.(type) {
	case *outbox.Hook:
		redacted := v.Redacted()
		if strings.HasSuffix(r.URL.Path, "/rotate-key") {
			redacted.SigningKey = v.SigningKey // the new key is what rotating is for
		}
		return redacted
	case []*outbox.Hook:
		redacted := make([]*outbox.Hook, len(v))
		for i, hook := range v {
			redacted[i] = hook.Redacted()
		}
		return redacted
	}
	return body
}

// jsonBodiesOnly refuses a request whose body is not JSON: a form or
// text/plain body is what a cross-site page can send without asking.
func jsonBodiesOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && !isJSON(r.Header.Get("Content-Type")) {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send the request body as Content-Type: application/json"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return &outbox.ValidationError{Field: "request body", Reason: err.Error()}
	}
	return nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, message := s.errorStatus(r, err)
	writeJSON(w, status, map[string]string{"error": message})
}

// errorStatus maps err to an HTTP status and a message for the client; an
// unexpected error is logged and not shown.
func (s *Server) errorStatus(r *http.Request, err error) (int, string) {
	var validationErr *outbox.ValidationError
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &validationErr):
		status = http.StatusBadRequest
	case errors.Is(err, outbox.ErrHookNotFound), errors.Is(err, outbox.ErrDeliveryNotFound), errors.Is(err, outbox.ErrEventNotFound),
		errors.Is(err, errConsoleNotFound):
		status = http.StatusNotFound
	case errors.Is(err, jobs.ErrDeliveryPending), errors.Is(err, jobs.ErrHookDisabled):
		status = http.StatusConflict
	}
	if status == http.StatusInternalServerError {
		s.logger.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		return status, "internal error; see the server's log"
	}
	return status, err.Error()
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
