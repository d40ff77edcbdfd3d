// Package identity is a small identity store, the kind of auth service
// hookrelay sits beside: users, roles, scopes, organizations and their
// members. Every mutation publishes its events with outbox builders in its
// own transaction, so an event exists exactly when its change does.
//
// Its SQL is the application's own, not hookrelay's, and is written inline as
// an application would. hookrelay demo and the integration tests use it.
package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/outbox"
)

// ErrNotFound is returned for an unknown user, role or organization.
var ErrNotFound = errors.New("identity: not found")

const schemaSQL = `
CREATE SCHEMA IF NOT EXISTS identity;
CREATE TABLE IF NOT EXISTS identity.users (
    id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    primary_email text,
    is_suspended boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS identity.roles (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS identity.scopes (
    id text PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE IF NOT EXISTS identity.role_scopes (
    role_id text REFERENCES identity.roles ON DELETE CASCADE,
    scope_id text REFERENCES identity.scopes ON DELETE CASCADE,
    PRIMARY KEY (role_id, scope_id)
);
CREATE TABLE IF NOT EXISTS identity.organizations (
    id text PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE IF NOT EXISTS identity.organization_members (
    organization_id text REFERENCES identity.organizations ON DELETE CASCADE,
    user_id text REFERENCES identity.users ON DELETE CASCADE,
    PRIMARY KEY (organization_id, user_id)
);`

// Store is the identity store.
type Store struct {
	pool   *pgxpool.Pool
	outbox *outbox.Store
}

// New creates the identity tables if needed and returns a store that
// publishes through ob.
func New(ctx context.Context, pool *pgxpool.Pool, ob *outbox.Store) (*Store, error) {
	if _, err := pool.Exec(ctx, schemaSQL); err != nil {
		return nil, fmt.Errorf("create identity tables: %w", err)
	}
	return &Store{pool: pool, outbox: ob}, nil
}

// inTx runs fn and publishes its events in one transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) ([]*outbox.Event, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		events, err := fn(tx)
		if err != nil {
			return err
		}
		for _, event := range events {
			if _, err := s.outbox.PublishTx(ctx, tx, event); err != nil {
				return err
			}
		}
		return nil
	})
}

// Register creates a user through the sign-in experience: User.Created and
// PostRegister.
func (s *Store) Register(ctx context.Context, user *outbox.User, interaction *outbox.Interaction) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		_, err := tx.Exec(ctx, "INSERT INTO identity.users (id, username, primary_email) VALUES ($1, $2, $3)", user.ID, user.Username, user.PrimaryEmail)
		i := *interaction
		i.User = user
		return []*outbox.Event{outbox.UserCreated(user), outbox.PostRegister(&i)}, err
	})
}

// SignIn records a finished sign-in: PostSignIn.
func (s *Store) SignIn(ctx context.Context, userID string, interaction *outbox.Interaction) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		user, err := getUser(ctx, tx, userID)
		i := *interaction
		i.User = user
		return []*outbox.Event{outbox.PostSignIn(&i)}, err
	})
}

// UpdateEmail changes a user's email: User.Data.Updated.
func (s *Store) UpdateEmail(ctx context.Context, userID, email string) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		if err := execOne(ctx, tx, "UPDATE identity.users SET primary_email = $2 WHERE id = $1", userID, email); err != nil {
			return nil, err
		}
		user, err := getUser(ctx, tx, userID)
		return []*outbox.Event{outbox.UserDataUpdated(user)}, err
	})
}

// Suspend suspends or reactivates a user: User.SuspensionStatus.Updated.
func (s *Store) Suspend(ctx context.Context, userID string, suspended bool) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		if err := execOne(ctx, tx, "UPDATE identity.users SET is_suspended = $2 WHERE id = $1", userID, suspended); err != nil {
			return nil, err
		}
		user, err := getUser(ctx, tx, userID)
		return []*outbox.Event{outbox.UserSuspensionStatusUpdated(user)}, err
	})
}

// DeleteUser deletes a user: User.Deleted with the deleted user as data.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		user, err := getUser(ctx, tx, userID)
		if err != nil {
			return nil, err
		}
		err = execOne(ctx, tx, "DELETE FROM identity.users WHERE id = $1", userID)
		return []*outbox.Event{outbox.UserDeleted(userID, user)}, err
	})
}

// CreateRole creates a role: Role.Created.
func (s *Store) CreateRole(ctx context.Context, role *outbox.Role) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		_, err := tx.Exec(ctx, "INSERT INTO identity.roles (id, name, description) VALUES ($1, $2, $3)", role.ID, role.Name, role.Description)
		return []*outbox.Event{outbox.RoleCreated(role)}, err
	})
}

// SetRoleScopes replaces a role's scopes, creating unknown ones: a
// Scope.Created per new scope and Role.Scopes.Updated.
func (s *Store) SetRoleScopes(ctx context.Context, roleID string, scopes []outbox.Scope) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		var events []*outbox.Event
		if _, err := tx.Exec(ctx, "DELETE FROM identity.role_scopes WHERE role_id = $1", roleID); err != nil {
			return nil, err
		}
		for i := range scopes {
			tag, err := tx.Exec(ctx, "INSERT INTO identity.scopes (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", scopes[i].ID, scopes[i].Name)
			if err != nil {
				return nil, err
			}
			if tag.RowsAffected() == 1 {
				events = append(events, outbox.ScopeCreated(&scopes[i]))
			}
			if _, err := tx.Exec(ctx, "INSERT INTO identity.role_scopes (role_id, scope_id) VALUES ($1, $2)", roleID, scopes[i].ID); err != nil {
				return nil, err
			}
		}
		return append(events, outbox.RoleScopesUpdated(roleID, scopes)), nil
	})
}

// CreateOrganization creates an organization: Organization.Created.
func (s *Store) CreateOrganization(ctx context.Context, org *outbox.Organization) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		_, err := tx.Exec(ctx, "INSERT INTO identity.organizations (id, name) VALUES ($1, $2)", org.ID, org.Name)
		return []*outbox.Event{outbox.OrganizationCreated(org)}, err
	})
}

// UpdateMembers adds and removes an organization's members:
// Organization.Membership.Updated.
func (s *Store) UpdateMembers(ctx context.Context, organizationID string, add, remove []string) error {
	return s.inTx(ctx, func(tx pgx.Tx) ([]*outbox.Event, error) {
		if _, err := tx.Exec(ctx, "INSERT INTO identity.organization_members (organization_id, user_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING", organizationID, add); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM identity.organization_members WHERE organization_id = $1 AND user_id = ANY($2)", organizationID, remove); err != nil {
			return nil, err
		}
		change := &outbox.MembershipChange{AddedUserIDs: add, RemovedUserIDs: remove}
		return []*outbox.Event{outbox.OrganizationMembershipUpdated(organizationID, change)}, nil
	})
}

func getUser(ctx context.Context, tx pgx.Tx, id string) (*outbox.User, error) {
	user := &outbox.User{ID: id}
	var email *string
	err := tx.QueryRow(ctx, "SELECT username, primary_email, is_suspended FROM identity.users WHERE id = $1", id).
		Scan(&user.Username, &email, &user.IsSuspended)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if email != nil {
		user.PrimaryEmail = *email
	}
	return user, err
}

func execOne(ctx context.Context, tx pgx.Tx, sql string, args ...any) error {
	tag, err := tx.Exec(ctx, sql, args...)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}
