package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hookrelay/hookrelay/outbox"
)

func runHooks(ctx context.Context, args []string, stdout io.Writer) error {
	return subcommand(ctx, "hooks", args, stdout, map[string]func(context.Context, []string, io.Writer) error{
		"create":     hooksCreate,
		"list":       hooksList,
		"show":       hooksShow,
		"update":     hooksUpdate,
		"delete":     hooksDelete,
		"enable":     hooksEnable,
		"disable":    hooksDisable,
		"rotate-key": hooksRotateKey,
		"test":       hooksTest,
	})
}

// hookFlags are the settings of hooks create and hooks update.
type hookFlags struct {
	url, name, tenant, rate, filter, ordering string
	burst                                     int
	events, headers                           stringList
}

func addHookFlags(fs *flag.FlagSet) *hookFlags {
	f := &hookFlags{}
	fs.StringVar(&f.url, "url", "", "URL that receives the deliveries")
	fs.StringVar(&f.name, "name", "", "name of the hook")
	fs.StringVar(&f.tenant, "tenant", "", "receive only this tenant's events")
	fs.Var(&f.events, "event", "event type, prefix wildcard (User.*) or *; repeatable")
	fs.Var(&f.headers, "header", "custom header 'Name: value'; repeatable")
	fs.StringVar(&f.rate, "rate", "", "most requests to the hook, across every process: N/s or N/m, such as 50/s; empty: unlimited")
	fs.IntVar(&f.burst, "burst", 0, "with --rate: as many more requests at once after a quiet spell")
	fs.StringVar(&f.ordering, "ordering", "", "subject: send the events of one subject in order, each once every earlier one is final; none: in no order (the default)")
	fs.StringVar(&f.filter, "filter", "", `SQL/JSON path predicate an event must pass, on {"event", "tenantId", "data", "context"}, such as '$.data.organizationId == "org_1"'; empty: none`)
	return f
}

// parseHeaders turns 'Name: value' flags into a map, refusing duplicates.
func parseHeaders(flags []string) (map[string]string, error) {
	headers, err := outbox.ParseHeaders(flags)
	var invalid *outbox.ValidationError
	if errors.As(err, &invalid) {
		return nil, usagef("invalid --header: %s", invalid.Reason)
	}
	return headers, err
}

func hooksCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("hooks create")
	f := addHookFlags(fs)
	disabled := fs.Bool("disabled", false, "create the hook disabled")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if f.url == "" || len(f.events) == 0 {
		return usagef("hooks create needs --url and at least one --event")
	}
	headers, err := parseHeaders(f.headers)
	if err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.CreateHook(ctx, &outbox.HookParams{
			Name: f.name, URL: f.url, Events: f.events, Headers: headers, TenantID: f.tenant, Disabled: *disabled,
			RateLimit: f.rate, RateBurst: f.burst, Filter: f.filter, Ordering: f.ordering,
		})
	})
}

func hooksList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("hooks list")
	reveal := fs.Bool("reveal-keys", false, "print the signing keys and custom header values (redacted otherwise)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		hooks, err := store.ListHooks(ctx)
		if err == nil && !*reveal {
			for i, hook := range hooks {
				hooks[i] = hook.Redacted()
			}
		}
		return hooks, err
	})
}

// withHook parses one hook ID and calls fn with an open store. A hook that fn
// returns is printed with its signing keys redacted unless --reveal-key
// (rotatedHook: but for its new key).
func withHook(ctx context.Context, name string, args []string, addFlags func(fs *flag.FlagSet), fn func(store *outbox.Store, fs *flag.FlagSet, o *options, id string) (any, error), stdout io.Writer) error {
	fs, o := newFlagSet(name)
	if addFlags != nil {
		addFlags(fs)
	}
	reveal := fs.Bool("reveal-key", false, "print the hook's signing keys and custom header values (redacted otherwise)")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		v, err := fn(store, fs, o, id)
		if err != nil || *reveal {
			return v, err
		}
		switch hook := v.(type) {
		case *outbox.Hook:
			return hook.Redacted(), nil
		case rotatedHook:
			// The new key is what rotate-key is for: it is shown, the
			// previous one and the custom headers are not.
			shown := hook.Redacted()
			shown.SigningKey = hook.SigningKey
			return shown, nil
		}
		return v, nil
	})
}

func hooksShow(ctx context.Context, args []string, stdout io.Writer) error {
	return withHook(ctx, "hooks show", args, nil, func(store *outbox.Store, _ *flag.FlagSet, _ *options, id string) (any, error) {
		return store.GetHook(ctx, id)
	}, stdout)
}

func hooksUpdate(ctx context.Context, args []string, stdout io.Writer) error {
	var f *hookFlags
	return withHook(ctx, "hooks update", args, func(fs *flag.FlagSet) { f = addHookFlags(fs) }, func(store *outbox.Store, fs *flag.FlagSet, _ *options, id string) (any, error) {
		update := &outbox.HookUpdate{}
		var err error
		fs.Visit(func(flag *flag.Flag) {
			switch flag.Name {
			case "url":
				update.URL = &f.url
			case "name":
				update.Name = &f.name
			case "tenant":
				update.TenantID = &f.tenant
			case "event":
				update.Events = f.events
			case "header":
				update.Headers, err = parseHeaders(f.headers)
			case "rate":
				update.RateLimit = &f.rate
			case "burst":
				update.RateBurst = &f.burst
			case "filter":
				update.Filter = &f.filter
			case "ordering":
				update.Ordering = &f.ordering
			}
		})
		if err != nil {
			return nil, err
		}
		return store.UpdateHook(ctx, id, update)
	}, stdout)
}

func hooksDelete(ctx context.Context, args []string, stdout io.Writer) error {
	return withHook(ctx, "hooks delete", args, nil, func(store *outbox.Store, _ *flag.FlagSet, _ *options, id string) (any, error) {
		return map[string]any{"id": id, "deleted": true}, store.DeleteHook(ctx, id)
	}, stdout)
}

func hooksEnable(ctx context.Context, args []string, stdout io.Writer) error {
	return withHook(ctx, "hooks enable", args, nil, func(store *outbox.Store, _ *flag.FlagSet, _ *options, id string) (any, error) {
		return store.EnableHook(ctx, id)
	}, stdout)
}

func hooksDisable(ctx context.Context, args []string, stdout io.Writer) error {
	return withHook(ctx, "hooks disable", args, nil, func(store *outbox.Store, _ *flag.FlagSet, _ *options, id string) (any, error) {
		return store.DisableHook(ctx, id, outbox.DisabledByOperator)
	}, stdout)
}

func hooksRotateKey(ctx context.Context, args []string, stdout io.Writer) error {
	var overlap *time.Duration
	return withHook(ctx, "hooks rotate-key", args, func(fs *flag.FlagSet) {
		overlap = fs.Duration("overlap", outbox.RotateOverlapDefault, "how long the previous key keeps signing")
	}, func(store *outbox.Store, _ *flag.FlagSet, _ *options, id string) (any, error) {
		hook, err := store.RotateHookKey(ctx, id, *overlap)
		return rotatedHook{hook}, err
	}, stdout)
}

// rotatedHook is a hook that rotate-key returns, printed with its new key.
type rotatedHook struct{ *outbox.Hook }

func hooksTest(ctx context.Context, args []string, stdout io.Writer) error {
	var event *string
	var sent *outbox.Delivery
	err := withHook(ctx, "hooks test", args, func(fs *flag.FlagSet) {
		event = fs.String("event", "", "event type of the sample (default: the first type the hook receives)")
	}, func(store *outbox.Store, _ *flag.FlagSet, o *options, id string) (any, error) {
		// The workers of hookrelay serve send it, through their guard.
		service, err := o.newService(store)
		if err != nil {
			return nil, err
		}
		sent, err = service.TestHook(ctx, id, *event)
		return sent, err
	}, stdout)
	if err == nil && sent.Status != outbox.DeliverySucceeded {
		reason := sent.LastError
		if reason == "" && sent.LastStatusCode != nil {
			reason = fmt.Sprintf("the receiver answered %d", *sent.LastStatusCode)
		}
		return fmt.Errorf("the test delivery %s failed: %s", sent.ID, reason)
	}
	if err == nil && sent.PassesFilter != nil && !*sent.PassesFilter {
		_, err = fmt.Fprintln(stdout, "the sample event does not pass the hook's filter: real events like it make no delivery")
	}
	return err
}
