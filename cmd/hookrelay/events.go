package main

import (
	"context"
	"io"

	"github.com/hookrelay/hookrelay/outbox"
)

func runEvents(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		// The catalogue needs no database.
		return printJSON(stdout, outbox.Catalog)
	}
	return subcommand(ctx, "events", args, stdout, map[string]func(context.Context, []string, io.Writer) error{
		"list":     eventsList,
		"show":     eventsShow,
		"types":    eventsTypes,
		"register": eventsRegister,
	})
}

func eventsList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("events list")
	eventType := fs.String("type", "", "only events of this type")
	limit := fs.Int("limit", outbox.DeliveryListMaxDefault, "the most events to list, newest first")
	after := fs.String("after", "", "list the page after this event ID (the last of the previous page)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.ListEvents(ctx, &outbox.EventFilter{Type: *eventType, Max: *limit, After: *after})
	})
}

func eventsShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("events show")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.GetEvent(ctx, id)
	})
}

func eventsTypes(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("events types")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.EventTypes(ctx)
	})
}

// eventsRegister registers custom event types, so that near misses of the
// catalogue's (see outbox.NearMiss) may be published and subscribed to.
func eventsRegister(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("events register")
	types, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(types) == 0 {
		return usagef("events register takes the custom event types to register, such as Invoice.Paid")
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return map[string]any{"registered": types}, store.RegisterEventTypes(ctx, types...)
	})
}
