package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// runHealthcheck asks a serve on this host whether it is ready (/readyz:
// its database answers), for container health checks: an image with no
// shell or curl has this command.
func runHealthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("healthcheck")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(o.addr)
	if err != nil {
		return usagef("invalid listen address %q (HOOKRELAY_ADDR): %v", o.addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: /readyz answered %s", resp.Status)
	}
	_, err = fmt.Fprintln(stdout, "ready")
	return err
}
