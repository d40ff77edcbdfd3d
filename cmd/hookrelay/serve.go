package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/hookrelay/hookrelay/server"
)

func runServe(ctx context.Context, args []string, _ io.Writer) error {
	fs, o := newFlagSet("serve")
	protectMetrics := fs.Bool("protect-metrics", os.Getenv("HOOKRELAY_PROTECT_METRICS") == "true", "serve /metrics to the admin token only, as a bearer token (HOOKRELAY_PROTECT_METRICS=true)")
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
	provider, shutdownTracing, err := tracerProvider(ctx, logger)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	config.TracerProvider = provider
	listener, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	return server.Run(ctx, config, &server.Config{AdminToken: o.adminToken, ProtectMetrics: *protectMetrics, Logger: logger}, listener)
}
