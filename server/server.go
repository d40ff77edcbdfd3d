// Package server is hookrelay's HTTP surface: health checks, Prometheus
// metrics, River's UI and the admin API, the last two behind the admin token.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"riverqueue.com/riverui"

	"github.com/hookrelay/hookrelay/jobs"
)

// Config configures a Server.
type Config struct {
	// Relay runs the pipeline the server reports on and operates, on its
	// own River client (jobs.Service) or the application's, on which it must
	// have been started. River's UI shows every job of that client. Required.
	Relay *jobs.Relay
	// AdminToken guards /api/ and /riverui/. Required.
	AdminToken string
	// ProtectMetrics puts /metrics behind the admin token as a bearer
	// token, for deployments that expose the port beyond their scraper.
	ProtectMetrics bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is hookrelay's HTTP handler.
type Server struct {
	relay   *jobs.Relay
	token   []byte
	logger  *slog.Logger
	riverUI *riverui.Handler
	console *console
	mux     *http.ServeMux
	handler http.Handler // mux behind cross-origin protection
}

// New returns a server for config. Call Start before serving River's UI.
func New(config *Config) (*Server, error) {
	if config.Relay == nil {
		return nil, errors.New("server: Config.Relay is required")
	}
	if config.Relay.Client() == nil {
		return nil, fmt.Errorf("server: %w", jobs.ErrNotStarted)
	}
	if config.AdminToken == "" {
		return nil, errors.New("an admin token is required: set HOOKRELAY_ADMIN_TOKEN or --admin-token")
	}
	logger := config.Logger
	if logger == nil {
		logger = slog.Default()
	}
	riverUI, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(config.Relay.Client(), nil),
		Logger:    logger,
		Prefix:    "/riverui",
	})
	if err != nil {
		return nil, err
	}
	s := &Server{
		relay:   config.Relay,
		token:   []byte(config.AdminToken),
		logger:  logger,
		riverUI: riverUI,
		mux:     http.NewServeMux(),
	}
	// Browsers that hold the token as Basic credentials for River's UI send
	// them with any request, cross-site ones included: every state-changing
	// request from another origin is refused, on every route.
	s.handler = http.NewCrossOriginProtection().Handler(s.mux)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	var metricsHandler http.Handler = promhttp.HandlerFor(config.Relay.Registry(), promhttp.HandlerOpts{})
	if config.ProtectMetrics {
		metricsHandler = s.authorizeAPI(metricsHandler)
	}
	s.mux.Handle("GET /metrics", metricsHandler)
	// River's UI sends JSON; its API takes nothing else, as hookrelay's.
	s.mux.Handle("/riverui/", s.authorizeBrowser(jsonBodiesOnly(riverUI)))
	s.routeProfiles()
	s.routeAPI()
	console, err := newConsole(config.Relay, s.token, s.consoleError)
	if err != nil {
		return nil, err
	}
	s.routeConsole(console)
	s.console = console
	return s, nil
}

// consoleError answers a console request that failed with an error page.
func (s *Server) consoleError(w http.ResponseWriter, r *http.Request, err error) {
	status, message := s.errorStatus(r, err)
	s.console.render(w, r, "error", &errorPage{page: page{status: status}, Message: message})
}

// Start starts River UI's background work; it ends with ctx.
func (s *Server) Start(ctx context.Context) error {
	return s.riverUI.Start(ctx)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.relay.Store().Pool().Ping(ctx); err != nil {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	if s.relay.Client() != nil && !s.relay.Working() {
		http.Error(w, "not working jobs: this process lost its process lock and is taking it again", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// authorizeBrowser lets through requests that carry the admin token, as a
// bearer token or as the password of HTTP Basic auth (so a browser can open
// River's UI); others get 401 with a Basic challenge.
func (s *Server) authorizeBrowser(next http.Handler) http.Handler {
	return s.authorize(next, true)
}

// authorizeAPI lets through requests that carry the admin token as a bearer
// token only: credentials a browser caches for River's UI never reach the
// API. Others get 401.
func (s *Server) authorizeAPI(next http.Handler) http.Handler {
	return s.authorize(next, false)
}

func (s *Server) authorize(next http.Handler, basic bool) http.Handler {
	challenge, hint := `Bearer realm="hookrelay"`, "unauthorized: send Authorization: Bearer <admin token>"
	if basic {
		challenge, hint = `Basic realm="hookrelay"`, "unauthorized: give the admin token as the Basic auth password"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hasToken(r, basic) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": hint})
	})
}

func (s *Server) hasToken(r *http.Request, basic bool) bool {
	var given string
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		given = bearer
	} else if _, password, ok := r.BasicAuth(); ok && basic {
		given = password
	}
	return given != "" && subtle.ConstantTimeCompare([]byte(given), s.token) == 1
}
