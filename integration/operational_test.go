package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// TestOperationalEvents: hookrelay publishes its own events about hooks and
// deliveries in the transaction of the change, to any hook that subscribes:
// a receiver answering 410 makes exactly one Hook.Disabled, each failed
// delivery (the 410'd one, one that exhausts its schedule) exactly one
// Delivery.Failed, and a hook of operational events that fails itself makes
// no more of them.
func TestOperationalEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/gone":
			w.WriteHeader(http.StatusGone)
		case "/fail", "/ops-fail":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	bundle := setupPipeline(t, nil)
	ops := bundle.createHook(t, rec.URL+"/ops", outbox.EventHookDisabled, outbox.EventDeliveryFailed)
	bundle.createHook(t, rec.URL+"/ops-fail", outbox.EventHookDisabled, outbox.EventDeliveryFailed)
	gone := bundle.createHook(t, rec.URL+"/gone", "User.Created")
	failing := bundle.createHook(t, rec.URL+"/fail", "User.Created")

	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u1"}})
	require.NoError(t, err)
	bundle.waitDelivery(t, ops.ID, outbox.DeliverySucceeded, 3)
	bundle.waitSettled(t)

	count := func(eventType string) int {
		var n int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.events WHERE type = $1", eventType).Scan(&n))
		return n
	}
	require.Equal(t, 1, count(outbox.EventHookDisabled), "one Hook.Disabled, for the 410")
	require.Equal(t, 2, count(outbox.EventDeliveryFailed), "one Delivery.Failed for each failed delivery (the 410'd and the exhausted); none for the failing hook of operational events")
	require.Equal(t, 4, count(outbox.EventHookCreated))

	var bodies []struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	for _, r := range rec.all() {
		if r.Header.Get("webhook-id") != "" && len(r.Body) > 0 && string(r.Body[0]) == "{" {
			var body struct {
				HookID string          `json:"hookId"`
				Event  string          `json:"event"`
				Data   json.RawMessage `json:"data"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &body))
			if body.HookID == ops.ID {
				bodies = append(bodies, struct {
					Event string          `json:"event"`
					Data  json.RawMessage `json:"data"`
				}{body.Event, body.Data})
			}
		}
	}
	require.Len(t, bodies, 3, "the operational hook got three events")
	failures := map[string]*outbox.DeliveryFailure{}
	for _, body := range bodies {
		switch body.Event {
		case outbox.EventHookDisabled:
			var hook outbox.HookInfo
			require.NoError(t, json.Unmarshal(body.Data, &hook))
			require.Equal(t, gone.ID, hook.ID)
			require.False(t, hook.Enabled)
			require.Contains(t, hook.DisabledReason, "410")
			require.NotContains(t, string(body.Data), gone.SigningKey, "no secret")
		case outbox.EventDeliveryFailed:
			var failure outbox.DeliveryFailure
			require.NoError(t, json.Unmarshal(body.Data, &failure))
			require.Equal(t, "User.Created", failure.EventType)
			failures[failure.HookID] = &failure
		default:
			t.Fatalf("unexpected %s", body.Event)
		}
	}

	require.Len(t, failures, 2)
	require.Equal(t, 4, failures[failing.ID].Attempts, "the schedule's three retries and the first attempt")
	require.Equal(t, http.StatusInternalServerError, failures[failing.ID].LastStatusCode)
	require.Equal(t, 1, failures[gone.ID].Attempts)
	require.Equal(t, http.StatusGone, failures[gone.ID].LastStatusCode)

	// Enabling, updating and deleting a hook are reported too.
	_, err = bundle.store.EnableHook(ctx, gone.ID)
	require.NoError(t, err)
	name := "renamed"
	_, err = bundle.store.UpdateHook(ctx, gone.ID, &outbox.HookUpdate{Name: &name})
	require.NoError(t, err)
	require.NoError(t, bundle.store.DeleteHook(ctx, gone.ID))
	require.Equal(t, 1, count(outbox.EventHookEnabled))
	require.Equal(t, 1, count(outbox.EventHookUpdated))
	require.Equal(t, 1, count(outbox.EventHookDeleted))
	require.ErrorIs(t, bundle.store.DeleteHook(ctx, gone.ID), outbox.ErrHookNotFound)
	require.Equal(t, 1, count(outbox.EventHookDeleted), "a delete that deleted nothing reports nothing")
}
