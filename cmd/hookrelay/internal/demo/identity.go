package demo

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/outbox"
)

// identityStore stands for the user's auth service: its own table, written
// in the same transactions as the events it publishes. Its SQL is the
// application's, not hookrelay's, so it is written inline.
type identityStore struct {
	pool  *pgxpool.Pool
	store *outbox.Store
	users []string
}

const identitySchema = `
CREATE SCHEMA IF NOT EXISTS demo_identity;
CREATE TABLE IF NOT EXISTS demo_identity.users (
    id text PRIMARY KEY,
    username text NOT NULL,
    primary_email text NOT NULL,
    roles text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);`

func newIdentityStore(ctx context.Context, pool *pgxpool.Pool, store *outbox.Store) (*identityStore, error) {
	if _, err := pool.Exec(ctx, identitySchema); err != nil {
		return nil, fmt.Errorf("create demo identity table: %w", err)
	}
	return &identityStore{pool: pool, store: store}, nil
}

// step runs one random identity action and returns how many events it
// published.
func (s *identityStore) step(ctx context.Context, n int) (int, error) {
	switch r := rand.IntN(10); {
	case len(s.users) < 3 || r < 4:
		return s.signUp(ctx, n)
	case r < 8:
		return s.signIn(ctx)
	default:
		return s.changeRoles(ctx)
	}
}

func (s *identityStore) signUp(ctx context.Context, n int) (int, error) {
	id := fmt.Sprintf("user_%d_%04x", n, rand.IntN(1<<16))
	user := map[string]any{"id": id, "username": fmt.Sprintf("user%d", n), "primaryEmail": fmt.Sprintf("user%d@example.com", n)}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO demo_identity.users (id, username, primary_email) VALUES ($1, $2, $3)",
			id, user["username"], user["primaryEmail"]); err != nil {
			return err
		}
		if _, err := s.store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Created", Data: user}); err != nil {
			return err
		}
		_, err := s.store.PublishTx(ctx, tx, &outbox.Event{
			Type:    "PostRegister",
			Context: interactionContext(id, "Register", user),
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sign up: %w", err)
	}
	s.users = append(s.users, id)
	return 2, nil
}

func (s *identityStore) signIn(ctx context.Context) (int, error) {
	id := s.users[rand.IntN(len(s.users))]
	_, err := s.store.Publish(ctx, &outbox.Event{
		Type:    "PostSignIn",
		Context: interactionContext(id, "SignIn", map[string]any{"id": id}),
	})
	if err != nil {
		return 0, fmt.Errorf("sign in: %w", err)
	}
	return 1, nil
}

func (s *identityStore) changeRoles(ctx context.Context) (int, error) {
	id := s.users[rand.IntN(len(s.users))]
	roles := []string{[]string{"admin", "editor", "viewer"}[rand.IntN(3)]}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE demo_identity.users SET roles = $2 WHERE id = $1", id, roles); err != nil {
			return err
		}
		_, err := s.store.PublishTx(ctx, tx, &outbox.Event{
			Type: "User.Data.Updated",
			Data: map[string]any{"id": id, "roles": roles},
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("change roles: %w", err)
	}
	return 1, nil
}

func interactionContext(userID, interaction string, user map[string]any) map[string]any {
	return map[string]any{
		"interactionEvent": interaction,
		"sessionId":        fmt.Sprintf("sess_%06x", rand.IntN(1<<24)),
		"userId":           userID,
		"user":             user,
		"applicationId":    "demo-app",
		"ip":               fmt.Sprintf("203.0.113.%d", rand.IntN(250)+1),
		"userAgent":        "Mozilla/5.0 (hookrelay demo)",
	}
}
