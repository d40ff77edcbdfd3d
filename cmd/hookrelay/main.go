// Command hookrelay runs and operates hookrelay: reliable, signed webhooks
// from a transactional outbox in Postgres. Run `hookrelay help` for usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `hookrelay: reliable, signed webhooks from a Postgres outbox.

Usage:
  hookrelay migrate                        apply River's and hookrelay's migrations
  hookrelay serve                          run the workers and the HTTP server
  hookrelay demo                           a throwaway Postgres, a receiver and a workload
  hookrelay bench [--json]                 measure throughput and latency against River itself
  hookrelay hooks create --url URL --event TYPE [--event TYPE…] [--name N] [--header 'K: V'…] [--tenant ID]
  hookrelay hooks list | show ID | update ID … | delete ID | enable ID | disable ID
  hookrelay hooks rotate-key ID [--overlap 24h] | test ID [--event TYPE]
  hookrelay publish --event TYPE [--data JSON|@FILE|-] [--context JSON|@FILE|-] [--tenant ID]
  hookrelay deliveries list [--hook ID] [--status STATUS] [--limit N] [--after ID] | show ID
  hookrelay deliveries replay ID | replay --hook ID --since RFC3339 [--until RFC3339] [--status failed|succeeded|canceled|all]
  hookrelay events                         the event catalogue
  hookrelay events list [--type TYPE] [--limit N] [--after ID] | show ID   published events
  hookrelay events types | register TYPE…  known types; register custom types near the catalogue's
  hookrelay capture install --table SCHEMA.TABLE --entity User --columns id,username,… [--tenant-column C]
  hookrelay capture install --preset logto|supabase | --mapping FILE [--table-schema S] [--all-tenants]
  hookrelay capture presets | preset show NAME   the built-in presets (logto, supabase), and one's file
  hookrelay capture list | remove --table SCHEMA.TABLE | remove --preset NAME
  hookrelay healthcheck                    exit 0 if the serve on HOOKRELAY_ADDR is ready (for containers)
  hookrelay version                        hookrelay's version

Every command takes --database-url (DATABASE_URL) and --schema (HOOKRELAY_SCHEMA);
run a command with -h for its flags.
`

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var help *helpRequest
	if errors.As(err, &help) {
		fmt.Fprint(os.Stdout, help.text)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookrelay: "+strings.ReplaceAll(err.Error(), "\n", " "))
		var usageErr *usageError
		if errors.As(err, &usageErr) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("no command given; run hookrelay help")
	}
	commands := map[string]func(context.Context, []string, io.Writer) error{
		"migrate":     runMigrate,
		"serve":       runServe,
		"demo":        runDemo,
		"bench":       runBench,
		"hooks":       runHooks,
		"publish":     runPublish,
		"deliveries":  runDeliveries,
		"capture":     runCapture,
		"events":      runEvents,
		"healthcheck": runHealthcheck,
		"version":     runVersion,
	}
	switch args[0] {
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	command, ok := commands[args[0]]
	if !ok {
		return usagef("unknown command %q; run hookrelay help", args[0])
	}
	return command(ctx, args[1:], stdout)
}

// subcommand dispatches to one of commands by args[0]; help, -h and --help
// print the group's lines of the usage.
func subcommand(ctx context.Context, group string, args []string, stdout io.Writer, commands map[string]func(context.Context, []string, io.Writer) error) error {
	if len(args) == 0 {
		return usagef("%s needs a subcommand; run hookrelay %s -h", group, group)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return &helpRequest{text: groupUsage(group)}
	}
	command, ok := commands[args[0]]
	if !ok {
		return usagef("unknown command %q for hookrelay %s; run hookrelay %s -h", args[0], group, group)
	}
	return command(ctx, args[1:], stdout)
}

// groupUsage is the usage's lines of a group of commands.
func groupUsage(group string) string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for line := range strings.Lines(usage) {
		if strings.HasPrefix(line, "  hookrelay "+group+" ") || line == "  hookrelay "+group+"\n" {
			b.WriteString(line)
		}
	}
	b.WriteString("\nRun a command with -h for its flags.\n")
	return b.String()
}
