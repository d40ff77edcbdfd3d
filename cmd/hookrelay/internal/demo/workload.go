package demo

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/hookrelay/hookrelay/examples/identity"
	"github.com/hookrelay/hookrelay/outbox"
)

// workload drives the reference identity store like a small auth service's
// traffic: mostly sign-ins, some sign-ups, profile and role changes.
type workload struct {
	store *identity.Store
	users []string
	n     int
}

// step runs one random action and returns how many events it published.
func (w *workload) step(ctx context.Context) (int, error) {
	w.n++
	switch r := rand.IntN(20); {
	case len(w.users) < 3 || r < 6:
		id := fmt.Sprintf("user_%d", w.n)
		user := &outbox.User{ID: id, Username: fmt.Sprintf("user%d", w.n), PrimaryEmail: fmt.Sprintf("user%d@example.com", w.n)}
		if err := w.store.Register(ctx, user, w.interaction()); err != nil {
			return 0, fmt.Errorf("register: %w", err)
		}
		w.users = append(w.users, id)
		return 2, nil
	case r < 15:
		return 1, w.store.SignIn(ctx, w.someUser(), w.interaction())
	case r < 17:
		return 1, w.store.UpdateEmail(ctx, w.someUser(), fmt.Sprintf("moved%d@example.org", w.n))
	case r < 19:
		role := &outbox.Role{ID: fmt.Sprintf("role_%d", w.n), Name: fmt.Sprintf("role %d", w.n)}
		if err := w.store.CreateRole(ctx, role); err != nil {
			return 0, err
		}
		scopes := []outbox.Scope{{ID: "read_users", Name: "read:users"}, {ID: fmt.Sprintf("scope_%d", w.n), Name: fmt.Sprintf("write:%d", w.n)}}
		return 3, w.store.SetRoleScopes(ctx, role.ID, scopes)
	default:
		org := &outbox.Organization{ID: fmt.Sprintf("org_%d", w.n), Name: fmt.Sprintf("Org %d", w.n)}
		if err := w.store.CreateOrganization(ctx, org); err != nil {
			return 0, err
		}
		return 2, w.store.UpdateMembers(ctx, org.ID, []string{w.someUser()}, nil)
	}
}

func (w *workload) someUser() string { return w.users[rand.IntN(len(w.users))] }

func (w *workload) interaction() *outbox.Interaction {
	return &outbox.Interaction{
		SessionID:   fmt.Sprintf("sess_%06x", rand.IntN(1<<24)),
		Application: &outbox.Application{ID: "demo-app", Name: "Demo", Type: "SPA"},
		IP:          fmt.Sprintf("203.0.113.%d", rand.IntN(250)+1),
		UserAgent:   "Mozilla/5.0 (hookrelay demo)",
	}
}
