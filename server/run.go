package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// drainTimeout bounds the wait for in-flight deliveries on shutdown; what is
// still running then is cancelled and River runs it again later.
const drainTimeout = 30 * time.Second

// NewHTTPServer returns an http.Server for handler with serve's limits: a
// request's headers must arrive within 10 s and the whole request within
// 30 s, an answer be written within a minute, and an idle connection is
// closed after 15 s, so that no slow or idle client holds a connection. Use
// it, or the same limits, for the handler of New.
func NewHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       15 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Run runs the workers of config and the HTTP server of serverConfig (whose
// Relay it sets) on listener until ctx ends, then drains in-flight work.
func Run(ctx context.Context, config *jobs.Config, serverConfig *Config, listener net.Listener) error {
	service, err := jobs.NewService(config)
	if err != nil {
		return err
	}
	serverConfig.Relay = service.Relay
	logger := serverConfig.Logger
	if logger == nil {
		logger = slog.Default()
	}
	srv, err := New(serverConfig)
	if err != nil {
		return err
	}
	if err := service.Start(ctx); err != nil {
		return err
	}
	uiCtx, stopUI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUI()
	if err := srv.Start(uiCtx); err != nil {
		return fmt.Errorf("start River UI: %w", err)
	}

	httpServer := NewHTTPServer(srv, logger)
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpServer.Serve(listener) }()
	logger.InfoContext(ctx, "hookrelay serving", "addr", listener.Addr().String(), "schema", config.Store.Schema(), "version", outbox.Version)

	select {
	case <-ctx.Done():
	case err = <-httpDone:
	case err = <-service.Superseded():
	}
	logger.Info("hookrelay stopping: draining in-flight deliveries")
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	shutdownErr := httpServer.Shutdown(drainCtx)
	stopErr := service.Stop(drainCtx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err = errors.Join(err, shutdownErr, stopErr); err != nil {
		return err
	}
	logger.Info("hookrelay stopped")
	return nil
}
