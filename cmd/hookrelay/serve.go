package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
	"github.com/hookrelay/hookrelay/server"
)

// drainTimeout bounds the wait for in-flight deliveries on shutdown; what is
// still running then is cancelled and River runs it again later.
const drainTimeout = 30 * time.Second

func runServe(ctx context.Context, args []string, _ io.Writer) error {
	fs, o := newFlagSet("serve")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if o.adminToken == "" {
		return usagef("serve needs an admin token: set HOOKRELAY_ADMIN_TOKEN or --admin-token")
	}
	logger := newLogger()
	store, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	config, err := o.jobsConfig(store, logger)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	return serve(ctx, config, o.adminToken, listener, logger)
}

// serve runs the workers and the HTTP server on listener until ctx ends, then
// drains in-flight work.
func serve(ctx context.Context, config *jobs.Config, adminToken string, listener net.Listener, logger *slog.Logger) error {
	service, err := jobs.NewService(config)
	if err != nil {
		return err
	}
	srv, err := server.New(&server.Config{Service: service, AdminToken: adminToken, Logger: logger})
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

	httpServer := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpServer.Serve(listener) }()
	logger.InfoContext(ctx, "hookrelay serving", "addr", listener.Addr().String(), "schema", config.Store.Schema(), "version", outbox.Version)

	select {
	case <-ctx.Done():
	case err = <-httpDone:
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
