package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// TestHookFilters: a hook's filter, a SQL/JSON path predicate evaluated by
// the fan-out, selects the events it receives; an event on which the filter
// errors (a type mismatch) is left out for that hook and fails nothing; a
// filter that is not a valid predicate is refused when set, saying why.
func TestHookFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, nil)
	newHook := func(path, filter string) *outbox.Hook {
		hook, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL + path, Events: []string{"*"}, Filter: filter})
		require.NoError(t, err)
		return hook
	}
	org := newHook("/org", `$.data.organizationId == "org_1"`)
	count := newHook("/count", `$.data.count > 5`)
	admin := newHook("/admin", `$.event starts with "User." && $.context.application == "admin-console"`)
	all := newHook("/all", "")
	require.Equal(t, `($."data"."organizationId" == "org_1")`, org.Filter, "shown as the database reads it")

	for _, event := range []struct {
		data    string
		context map[string]any
	}{
		{`{"organizationId": "org_1"}`, nil},
		{`{"organizationId": "org_2"}`, nil},
		{`{"count": "many"}`, nil}, // a type mismatch for the count filter
		{`{"count": 7}`, map[string]any{"application": "admin-console"}},
	} {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created", Data: json.RawMessage(event.data), Context: event.context})
		require.NoError(t, err)
	}
	bundle.waitDelivery(t, all.ID, outbox.DeliverySucceeded, 4)
	bundle.waitSettled(t)
	for hook, want := range map[*outbox.Hook]int{org: 1, count: 1, admin: 1} {
		deliveries, err := bundle.store.ListDeliveries(ctx, &outbox.DeliveryFilter{HookID: hook.ID, Max: 10})
		require.NoError(t, err)
		require.Len(t, deliveries, want, hook.Filter)
	}
	for filter, want := range map[string]string{
		`$.data.(`:              "syntax error",
		`$.data.organizationId`: "single boolean result is expected",
		`$.data.x == ` + strings.Repeat("1", 1100): "at most 1024",
	} {
		_, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL, Events: []string{"*"}, Filter: filter})
		var invalid *outbox.ValidationError
		require.ErrorAs(t, err, &invalid, filter)
		require.Equal(t, "filter", invalid.Field)
		require.Contains(t, invalid.Reason, want)
	}
	_, err := bundle.store.UpdateHook(ctx, org.ID, &outbox.HookUpdate{Filter: new(string)})
	require.NoError(t, err)
	hook, err := bundle.store.GetHook(ctx, org.ID)
	require.NoError(t, err)
	require.Empty(t, hook.Filter, "an empty filter removes it")

	// A test-send says whether its sample passes the filter.
	sent, err := bundle.service.TestHook(ctx, count.ID, "User.Created")
	require.NoError(t, err)
	require.NotNil(t, sent.PassesFilter)
	require.False(t, *sent.PassesFilter, "the sample has no count")
}
