package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/hookrelay/hookrelay/outbox"
)

func runDeliveries(ctx context.Context, args []string, stdout io.Writer) error {
	return subcommand(ctx, "deliveries", args, stdout, map[string]func(context.Context, []string, io.Writer) error{
		"list":   deliveriesList,
		"show":   deliveriesShow,
		"replay": deliveriesReplay,
	})
}

func deliveriesList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("deliveries list")
	hook := fs.String("hook", "", "only this hook's deliveries")
	event := fs.String("event", "", "only the deliveries of this event ID")
	status := fs.String("status", "", "only deliveries of this status: pending, succeeded, failed or canceled")
	limit := fs.Int("limit", outbox.DeliveryListMaxDefault, "the most deliveries to list, newest first")
	after := fs.String("after", "", "list the page after this delivery ID (the last of the previous page)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: *hook, EventID: *event, Status: *status, Max: *limit, After: *after})
	})
}

func deliveriesShow(ctx context.Context, args []string, stdout io.Writer) error {
	return withHook(ctx, "deliveries show", args, nil, func(store *outbox.Store, _ *flag.FlagSet, _ *options, id string) (any, error) {
		return store.GetDelivery(ctx, id)
	}, stdout)
}

func deliveriesReplay(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("deliveries replay")
	hook := fs.String("hook", "", "replay this hook's deliveries in a time range")
	since := fs.String("since", "", "start of the range, RFC 3339")
	until := fs.String("until", "", "end of the range, RFC 3339 (default now)")
	status := fs.String("status", outbox.DeliveryFailed, "replay the range's deliveries of this status: failed, succeeded, canceled or all (finished ones)")
	positional, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(positional) == 1 && *hook == "":
	case len(positional) == 0 && *hook != "" && *since != "":
	default:
		return usagef("deliveries replay takes a delivery ID, or --hook ID --since RFC3339 [--until RFC3339] [--status failed|succeeded|canceled|all]")
	}

	r := &outbox.ReplayRange{HookID: *hook, Status: *status}
	if *hook != "" {
		if r.Since, err = parseTime("since", *since); err != nil {
			return err
		}
		if *until != "" {
			if r.Until, err = parseTime("until", *until); err != nil {
				return err
			}
		}
	}

	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		service, err := o.newService(store)
		if err != nil {
			return nil, err
		}
		if len(positional) == 1 {
			return map[string]any{"replayed": 1, "id": positional[0]}, service.ReplayDelivery(ctx, positional[0])
		}
		n, err := service.ReplayRange(ctx, r)
		return map[string]int{"replayed": n}, err
	})
}

func parseTime(name, value string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, usagef("invalid --%s %q: give an RFC 3339 time such as 2026-01-02T15:04:05Z", name, value)
	}
	return t, nil
}
