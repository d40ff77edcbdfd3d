package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/hookrelay/hookrelay/outbox"
)

// runVersion prints hookrelay's version (see outbox.Version), and the Go
// version and commit it was built from when the build recorded them.
func runVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs, _ := newFlagSet("version")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	line := "hookrelay " + outbox.Version
	if info, ok := debug.ReadBuildInfo(); ok {
		line += " " + info.GoVersion
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if revision := settings["vcs.revision"]; revision != "" && !strings.Contains(outbox.Version, revision[:min(12, len(revision))]) {
			line += " " + revision[:min(12, len(revision))]
			if settings["vcs.modified"] == "true" {
				line += "+modified"
			}
		}
	}
	_, err := fmt.Fprintln(stdout, line)
	return err
}
