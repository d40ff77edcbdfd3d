package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hookrelay/hookrelay/outbox"
)

func runPublish(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("publish")
	eventType := fs.String("event", "", "event type, such as User.Created")
	data := fs.String("data", "", "the event's data: JSON, @FILE to read it from a file, or - from stdin")
	eventContext := fs.String("context", "", "keys merged into the body's top level: a JSON object, @FILE or -")
	tenant := fs.String("tenant", "", "tenant of the event")
	subject := fs.String("subject", "", "the entity the event is about, such as user:42, for hooks ordered by subject")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *eventType == "" {
		return usagef("publish needs --event TYPE")
	}
	if *data == "-" && *eventContext == "-" {
		return usagef("publish reads one of --data and --context from stdin, not both")
	}
	event := &outbox.Event{Type: *eventType, TenantID: *tenant, Subject: *subject}
	if *data != "" {
		raw, err := readJSONArg("data", *data)
		if err != nil {
			return err
		}
		event.Data = raw
	}
	if *eventContext != "" {
		raw, err := readJSONArg("context", *eventContext)
		if err == nil && json.Unmarshal(raw, &event.Context) != nil {
			err = usagef("invalid --context: want a JSON object")
		}
		if err != nil {
			return err
		}
	}
	store, err := o.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	id, err := store.Publish(ctx, event)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, id)
	return err
}

// readJSONArg returns the JSON a flag gives: the value itself, the content
// of a file for @FILE, or stdin for - (payloads past the limit of a command
// line's length).
func readJSONArg(name, value string) (json.RawMessage, error) {
	raw, source := []byte(value), ""
	switch {
	case value == "-":
		var err error
		if raw, err = io.ReadAll(os.Stdin); err != nil {
			return nil, fmt.Errorf("read --%s from stdin: %w", name, err)
		}
		source = " (stdin)"
	case strings.HasPrefix(value, "@"):
		var err error
		if raw, err = os.ReadFile(value[1:]); err != nil {
			return nil, usagef("invalid --%s: %v", name, err)
		}
		source = " (" + value[1:] + ")"
	}
	if !json.Valid(raw) {
		return nil, usagef("invalid --%s%s: not JSON", name, source)
	}
	return raw, nil
}

func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("migrate")
	serveRole := fs.String("serve-role", os.Getenv("HOOKRELAY_SERVE_ROLE"), "after migrating, grant this role what serve needs, creating it to log in with HOOKRELAY_SERVE_PASSWORD if it does not exist (HOOKRELAY_SERVE_ROLE)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	store, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	if *serveRole != "" {
		if err := store.GrantServe(ctx, *serveRole, os.Getenv("HOOKRELAY_SERVE_PASSWORD")); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "role %s may serve\n", *serveRole); err != nil {
			return err
		}
	}
	if !store.OwnsRiverSchema() {
		_, err = fmt.Fprintf(stdout, "River's migrations skipped: River's tables are in schema %s, which the application migrates\n", store.RiverSchema())
		if err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "schema %s is migrated\n", store.Schema())
	return err
}
