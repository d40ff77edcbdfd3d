package outbox

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// Custom event types stay possible, but one that is a near miss of a
// catalogue type (User.Craeted) is almost always a typo that no hook would
// ever receive: publishing it, or subscribing to it, is refused with the
// catalogue's spelling, unless the type was registered as custom on purpose
// (RegisterEventTypes, hookrelay events register). A wildcard must match a
// catalogue or registered type. The SQL function publish checks the same,
// against the same table (schema/013_event_types.up.sql).

// nearMissMaxDistance: a near miss differs from a catalogue type by case, or
// by at most this many letters added, removed, changed or swapped.
const nearMissMaxDistance = 2

// NearMiss returns the catalogue type of which eventType is a near miss, or
// "" when it is none (a catalogue type itself, or far from all of them).
func NearMiss(eventType string) string {
	if eventType == "" {
		return ""
	}
	for _, info := range Catalog {
		if info.Type == eventType {
			return ""
		}
	}
	for _, info := range Catalog {
		if strings.EqualFold(info.Type, eventType) || (info.Type[0] == eventType[0] && editDistance(info.Type, eventType) <= nearMissMaxDistance) {
			return info.Type
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance of a and b (edits
// and swaps of adjacent letters), or a number past nearMissMaxDistance when
// their lengths alone say it is.
func editDistance(a, b string) int {
	if d := len(a) - len(b); d > nearMissMaxDistance || -d > nearMissMaxDistance {
		return nearMissMaxDistance + 1
	}
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// RegisterEventTypes registers custom event types, so that they may be
// published and subscribed to even when they are near misses of catalogue
// types. Each must be a valid event type; registering twice is harmless.
func (s *Store) RegisterEventTypes(ctx context.Context, types ...string) error {
	return s.registerEventTypes(ctx, s.pool, types)
}

// RegisterEventTypesTx is RegisterEventTypes inside tx.
func (s *Store) RegisterEventTypesTx(ctx context.Context, tx pgx.Tx, types ...string) error {
	return s.registerEventTypes(ctx, tx, types)
}

func (s *Store) registerEventTypes(ctx context.Context, db dbsqlc.DBTX, types []string) error {
	for _, t := range types {
		if err := ValidateEventType(t); err != nil {
			return err
		}
	}
	return wrap(s.queries(db).EventTypeRegister(ctx, types), "register %d event types", len(types))
}

// KnownEventType is a type of the catalogue, or a custom type registered.
type KnownEventType struct {
	Name         string    `json:"name"`
	Catalogue    bool      `json:"catalogue"`
	RegisteredAt time.Time `json:"registeredAt"`
}

// EventTypes returns the catalogue's types, then the registered custom
// ones.
func (s *Store) EventTypes(ctx context.Context) ([]*KnownEventType, error) {
	rows, err := s.queries(s.pool).EventTypeList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	types := make([]*KnownEventType, len(rows))
	for i, row := range rows {
		types[i] = &KnownEventType{Name: row.Name, Catalogue: row.Catalogue, RegisteredAt: row.CreatedAt}
	}
	return types, nil
}

// CheckEventType returns a *ValidationError for an event type that is not
// valid, or is a near miss of a catalogue type and was not registered: for
// those who install what publishes it (captures).
func (s *Store) CheckEventType(ctx context.Context, eventType string) error {
	if err := ValidateEventType(eventType); err != nil {
		return err
	}
	return s.checkNearMiss(ctx, s.pool, eventType, "event type")
}

// checkNearMiss refuses an event type that is a near miss of a catalogue
// type and was not registered.
func (s *Store) checkNearMiss(ctx context.Context, db dbsqlc.DBTX, eventType, field string) error {
	suggestion := NearMiss(eventType)
	if suggestion == "" {
		return nil
	}
	registered, err := s.queries(db).EventTypeRegistered(ctx, eventType)
	if err != nil {
		return fmt.Errorf("look up event type %s: %w", eventType, err)
	}
	if registered {
		return nil
	}
	return invalid(field, "%q is not in the catalogue: did you mean %s? A custom type this close to the catalogue's must be registered first: hookrelay events register %s (Store.RegisterEventTypes)",
		eventType, suggestion, eventType)
}

// checkFilters refuses filters that are unregistered near misses, and
// wildcards that match no catalogue or registered type.
func (s *Store) checkFilters(ctx context.Context, filters []string) error {
	var registered []string
	for _, filter := range filters {
		prefix, wildcard := strings.CutSuffix(filter, ".*")
		if filter == "*" {
			continue
		}
		if !wildcard {
			if err := s.checkNearMiss(ctx, s.pool, filter, "event filter"); err != nil {
				return err
			}
			continue
		}
		if registered == nil {
			types, err := s.EventTypes(ctx)
			if err != nil {
				return err
			}
			registered = make([]string, 0, len(types))
			for _, t := range types {
				registered = append(registered, t.Name)
			}
		}
		if slices.ContainsFunc(registered, func(t string) bool { return MatchEventFilter(filter, t) }) {
			continue
		}
		hint := "register the custom types it should match first (hookrelay events register TYPE)"
		if near := nearestPrefix(prefix); near != "" {
			hint = "did you mean " + near + ".*? Or " + hint
		}
		return invalid("event filter", "%q matches no type of the catalogue: %s", filter, hint)
	}
	return nil
}

// nearestPrefix is the catalogue's type prefix (User, Organization.Membership)
// nearest prefix, if near.
func nearestPrefix(prefix string) string {
	best, bestDistance := "", nearMissMaxDistance+1
	for _, info := range Catalog {
		parts := strings.Split(info.Type, ".")
		for i := 1; i < len(parts); i++ {
			candidate := strings.Join(parts[:i], ".")
			if d := editDistance(strings.ToLower(candidate), strings.ToLower(prefix)); d < bestDistance {
				best, bestDistance = candidate, d
			}
		}
	}
	return best
}
