package integration

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/examples/identity"
	"github.com/hookrelay/hookrelay/outbox"
)

// TestIdentityStoreDeliversItsEvents drives the reference identity store and
// checks that each mutation's events reach a subscribed receiver, and that a
// failed mutation publishes nothing.
func TestIdentityStoreDeliversItsEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, nil)
	bundle.createHook(t, rec.URL, "*")
	store, err := identity.New(ctx, bundle.pool, bundle.store)
	require.NoError(t, err)

	interaction := &outbox.Interaction{SessionID: "s1", IP: "203.0.113.9", UserAgent: "test"}
	ann := &outbox.User{ID: "u1", Username: "ann", PrimaryEmail: "ann@example.com"}
	require.NoError(t, store.Register(ctx, ann, interaction))
	require.Error(t, store.Register(ctx, &outbox.User{ID: "u2", Username: "ann"}, interaction), "a duplicate username fails")
	require.NoError(t, store.SignIn(ctx, "u1", interaction))
	require.NoError(t, store.UpdateEmail(ctx, "u1", "ann@example.org"))
	require.ErrorIs(t, store.UpdateEmail(ctx, "nobody", "x@example.org"), identity.ErrNotFound)
	require.NoError(t, store.Suspend(ctx, "u1", true))
	require.NoError(t, store.CreateRole(ctx, &outbox.Role{ID: "r1", Name: "admin"}))
	require.NoError(t, store.SetRoleScopes(ctx, "r1", []outbox.Scope{{ID: "s1", Name: "read:users"}, {ID: "s2", Name: "write:users"}}))
	require.NoError(t, store.CreateOrganization(ctx, &outbox.Organization{ID: "o1", Name: "Acme"}))
	require.NoError(t, store.UpdateMembers(ctx, "o1", []string{"u1"}, nil))
	require.NoError(t, store.DeleteUser(ctx, "u1"))

	want := []string{
		"User.Created", "PostRegister", "PostSignIn", "User.Data.Updated", "User.SuspensionStatus.Updated",
		"Role.Created", "Scope.Created", "Scope.Created", "Role.Scopes.Updated", "Organization.Created",
		"Organization.Membership.Updated", "User.Deleted",
	}
	rec.waitFor(t, 30*time.Second, func(r []received) bool { return len(r) >= len(want) })
	bundle.waitSettled(t)
	reqs := rec.all()
	require.Len(t, reqs, len(want), "a failed mutation publishes nothing")

	bodies := map[string]map[string]any{}
	var got []string
	for _, req := range reqs {
		var body map[string]any
		require.NoError(t, json.Unmarshal(req.Body, &body))
		got = append(got, body["event"].(string))
		bodies[body["event"].(string)] = body
	}
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got)

	require.Equal(t, "Register", bodies["PostRegister"]["interactionEvent"])
	require.Equal(t, "u1", bodies["PostSignIn"]["userId"])
	require.Equal(t, "203.0.113.9", bodies["PostSignIn"]["userIp"])
	require.Equal(t, "ann@example.org", bodies["User.Data.Updated"]["data"].(map[string]any)["primaryEmail"])
	require.Equal(t, true, bodies["User.SuspensionStatus.Updated"]["data"].(map[string]any)["isSuspended"])
	require.Equal(t, "r1", bodies["Role.Scopes.Updated"]["roleId"])
	require.Equal(t, []any{"u1"}, bodies["Organization.Membership.Updated"]["addedUserIds"])
	require.Equal(t, "u1", bodies["User.Deleted"]["entityId"])
	require.Equal(t, "ann", bodies["User.Deleted"]["data"].(map[string]any)["username"])
}
