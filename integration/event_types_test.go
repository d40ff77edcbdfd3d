package integration

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// TestEventTypeTypos: a near miss of a catalogue type is refused with the
// catalogue's spelling wherever a type is named (PublishTx, the SQL
// function, hook filters), and accepted once registered as custom; custom
// types far from the catalogue need nothing.
func TestEventTypeTypos(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	publishSQL := func(eventType string) error {
		_, err := bundle.pool.Exec(ctx, "SELECT hookrelay.publish($1, '{}')", eventType)
		return err
	}
	createHook := func(events ...string) error {
		_, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: "http://127.0.0.1:9/hook", Events: events})
		return err
	}

	t.Run("CatalogueTableIsTheCatalogue", func(t *testing.T) {
		rows, err := bundle.pool.Query(ctx, "SELECT name FROM hookrelay.event_types WHERE catalogue ORDER BY name")
		require.NoError(t, err)
		seeded, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		var catalogue []string
		for _, info := range outbox.Catalog {
			catalogue = append(catalogue, info.Type)
		}
		slices.Sort(catalogue)
		require.Equal(t, catalogue, seeded)
	})

	t.Run("SQLAndGoAgree", func(t *testing.T) {
		// Every one-edit variant of every catalogue type, and some farther.
		var candidates []string
		for _, info := range outbox.Catalog {
			name := info.Type
			for i := range len(name) {
				candidates = append(candidates, name[:i]+name[i+1:], name[:i]+"x"+name[i+1:], name[:i]+"Q"+name[i:])
				if i+1 < len(name) {
					candidates = append(candidates, name[:i]+name[i+1:i+2]+name[i:i+1]+name[i+2:])
				}
			}
			candidates = append(candidates, name, name+"Xyz", "Custom"+name)
		}
		rows, err := bundle.pool.Query(ctx, "SELECT coalesce(hookrelay.event_type_near_miss(t), '') FROM unnest($1::text[]) WITH ORDINALITY AS c(t, i) ORDER BY i", candidates)
		require.NoError(t, err)
		nearMisses, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Len(t, nearMisses, len(candidates))
		for i, candidate := range candidates {
			require.Equal(t, outbox.NearMiss(candidate), nearMisses[i], candidate)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Craeted"})
		var validationErr *outbox.ValidationError
		require.ErrorAs(t, err, &validationErr)
		require.ErrorContains(t, err, "did you mean User.Created?")
		require.ErrorContains(t, err, "hookrelay events register User.Craeted")

		var pgErr *pgconn.PgError
		require.True(t, errors.As(publishSQL("PostSignin"), &pgErr))
		require.Equal(t, "22023", pgErr.Code)
		require.Contains(t, pgErr.Message, "did you mean PostSignIn?")

		require.ErrorContains(t, createHook("User.Created", "User.Craeted"), "did you mean User.Created?")
		require.ErrorContains(t, createHook("Usr.*"), "did you mean User.*?")
		require.ErrorContains(t, createHook("Invoice.*"), `"Invoice.*" matches no type`)
		require.Equal(t, 0, countEvents(t, bundle.pool))

		hook, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: "http://127.0.0.1:9/hook", Events: []string{"User.*"}})
		require.NoError(t, err)
		_, err = bundle.store.UpdateHook(ctx, hook.ID, &outbox.HookUpdate{Events: []string{"Role.Scope.Updated"}})
		require.ErrorContains(t, err, "did you mean Role.Scopes.Updated?")
	})

	t.Run("CustomTypesFarFromTheCatalogue", func(t *testing.T) {
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "Invoice.Paid"})
		require.NoError(t, err)
		require.NoError(t, publishSQL("Invoice.Refunded"))
		require.NoError(t, createHook("Invoice.Paid", "*", "User.*", "Organization.Membership.*"))
	})

	t.Run("RegisteredOnPurpose", func(t *testing.T) {
		require.NoError(t, bundle.store.RegisterEventTypes(ctx, "User.Craeted", "Invoice.Paid"))
		require.NoError(t, bundle.store.RegisterEventTypes(ctx, "Invoice.Paid"), "twice is harmless")
		_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Craeted"})
		require.NoError(t, err)
		require.NoError(t, publishSQL("User.Craeted"))
		require.NoError(t, createHook("User.Craeted", "Invoice.*"))
		require.ErrorContains(t, bundle.store.RegisterEventTypes(ctx, "User.*"), "dotted PascalCase")

		types, err := bundle.store.EventTypes(ctx)
		require.NoError(t, err)
		require.Len(t, types, len(outbox.Catalog)+2)
	})
}
