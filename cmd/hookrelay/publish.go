package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hookrelay/hookrelay/outbox"
)

func runPublish(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("publish")
	eventType := fs.String("event", "", "event type, such as User.Created")
	data := fs.String("data", "", "the event's data, JSON")
	eventContext := fs.String("context", "", "keys merged into the body's top level, a JSON object")
	tenant := fs.String("tenant", "", "tenant of the event")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *eventType == "" {
		return usagef("publish needs --event TYPE")
	}
	event := &outbox.Event{Type: *eventType, TenantID: *tenant}
	if *data != "" {
		if !json.Valid([]byte(*data)) {
			return usagef("invalid --data: not JSON")
		}
		event.Data = json.RawMessage(*data)
	}
	if *eventContext != "" {
		if err := json.Unmarshal([]byte(*eventContext), &event.Context); err != nil {
			return usagef("invalid --context: want a JSON object")
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

func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("migrate")
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
	if !store.OwnsRiverSchema() {
		_, err = fmt.Fprintf(stdout, "River's migrations skipped: River's tables are in schema %s, which the application migrates\n", store.RiverSchema())
		if err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "schema %s is migrated\n", store.Schema())
	return err
}
