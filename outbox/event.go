package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// Event is an identity event to publish, such as a user created or a sign-in
// finished.
type Event struct {
	// Type is the event type: dotted PascalCase words such as User.Created
	// or PostSignIn (see ValidateEventType).
	Type string

	// Data is the event's entity, marshaled to JSON and sent as the body's
	// "data" (null when nil). A json.RawMessage is sent as it is.
	Data any

	// Context is merged into the top level of the webhook body: userId,
	// sessionId, ip, userAgent, interactionEvent, user, application, ….
	// Keys of the body itself (hookId, event, createdAt, eventId, data,
	// tenantId) are never overridden.
	Context map[string]any

	// TenantID, when set, limits the event to hooks of no tenant or of this
	// tenant, and is sent as the body's "tenantId".
	TenantID string

	// Subject, when set, is the entity the event is about ("user:42",
	// "org:7/user:42"), at most SubjectMaxLength bytes: a hook ordered by
	// subject sends the events of one subject (and tenant) in the order
	// they were published. Events of one subject must be published in that
	// order: in one transaction, or in transactions that a row lock of the
	// writer serialises, as the writes to one row are.
	Subject string
}

// SubjectMaxLength bounds an event's subject, in bytes.
const SubjectMaxLength = 256

// StoredEvent is an event as the outbox holds it.
type StoredEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Data        json.RawMessage `json:"data"`
	Context     json.RawMessage `json:"context"`
	TenantID    string          `json:"tenantId,omitempty"`
	Subject     string          `json:"subject,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	FannedOutAt *time.Time      `json:"fannedOutAt,omitempty"`
}

// PublishTx writes event to the outbox inside tx, the caller's transaction,
// and returns the event's ID. The event exists if and only if tx commits; it
// is then fanned out to every subscribed hook and delivered, even if this
// process dies right after the commit:
//
//	tx, err := pool.Begin(ctx)
//	if err != nil {
//		return err
//	}
//	defer tx.Rollback(ctx)
//
//	if _, err := tx.Exec(ctx, "INSERT INTO users (id, email) VALUES ($1, $2)", id, email); err != nil {
//		return err
//	}
//	if _, err := store.PublishTx(ctx, tx, &outbox.Event{
//		Type: "User.Created",
//		Data: map[string]any{"id": id, "primaryEmail": email},
//	}); err != nil {
//		return err
//	}
//	return tx.Commit(ctx)
//
// PublishTx writes one row and nothing else, so it adds as little as possible
// to the caller's transaction. Invalid events return a *ValidationError and
// write nothing.
func (s *Store) PublishTx(ctx context.Context, tx pgx.Tx, event *Event) (string, error) {
	params, err := eventInsertParams(event, s.maxPayload)
	if err != nil {
		return "", err
	}
	if err := s.checkNearMiss(ctx, tx, event.Type, "event type"); err != nil {
		return "", err
	}
	params.TraceParent = nullable(TraceParent(ctx))
	row, err := s.queries(tx).EventInsert(ctx, params)
	if err != nil {
		return "", fmt.Errorf("insert %s event: %w", event.Type, interpretPgError(err))
	}
	return row.ID, nil
}

// Publish is PublishTx in a transaction of its own, for events that follow no
// other write.
func (s *Store) Publish(ctx context.Context, event *Event) (string, error) {
	var id string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		id, err = s.PublishTx(ctx, tx, event)
		return err
	})
	return id, err
}

// PublishSQL publishes through the SQL function publish, as writers in other
// languages do, in a transaction of its own. Its validation is the function's.
func (s *Store) PublishSQL(ctx context.Context, eventType string, data, eventContext json.RawMessage, tenantID, subject string) (string, error) {
	id, err := s.queries(s.pool).EventPublishSQL(ctx, &dbsqlc.EventPublishSQLParams{
		EventType: eventType,
		Data:      data,
		Context:   eventContext,
		TenantID:  nullable(tenantID),
		Subject:   nullable(subject),
	})
	if err != nil {
		return "", wrap(interpretPgError(err), "publish %s event", eventType)
	}
	return id, nil
}

// GetEvent returns the event with the given ID, or ErrEventNotFound.
func (s *Store) GetEvent(ctx context.Context, id string) (*StoredEvent, error) {
	if !isUUID(id) {
		return nil, missing(ErrEventNotFound, id)
	}
	row, err := s.queries(s.pool).EventGetByID(ctx, id)
	if err != nil {
		return nil, lookupErr(err, ErrEventNotFound, id, "get event %s", id)
	}
	return &StoredEvent{
		ID:          row.ID,
		Type:        row.Type,
		Data:        row.Data,
		Context:     row.Context,
		TenantID:    deref(row.TenantID),
		Subject:     deref(row.Subject),
		CreatedAt:   row.CreatedAt,
		FannedOutAt: row.FannedOutAt,
	}, nil
}

func eventInsertParams(event *Event, maxPayload int) (*dbsqlc.EventInsertParams, error) {
	if err := ValidateEventType(event.Type); err != nil {
		return nil, err
	}
	var data []byte
	if event.Data != nil {
		var err error
		if data, err = json.Marshal(event.Data); err != nil {
			return nil, invalid("event data", "cannot encode as JSON: %v", err)
		}
	}
	eventContext := []byte("{}")
	if len(event.Context) > 0 {
		var err error
		if eventContext, err = json.Marshal(event.Context); err != nil {
			return nil, invalid("event context", "cannot encode as JSON: %v", err)
		}
	}
	if len(event.TenantID) > TenantIDMaxLength {
		return nil, invalid("tenant id", "%d bytes; at most %d", len(event.TenantID), TenantIDMaxLength)
	}
	if len(event.Subject) > SubjectMaxLength {
		return nil, invalid("subject", "%d bytes; at most %d", len(event.Subject), SubjectMaxLength)
	}
	if size := len(data) + len(eventContext); size > maxPayload {
		return nil, invalid("event", "payload of %d bytes is too large: data and context together may be at most %d bytes (HOOKRELAY_MAX_PAYLOAD_BYTES, outbox.Config.MaxPayloadBytes)", size, maxPayload)
	}
	return &dbsqlc.EventInsertParams{
		ID:       newUUIDv7(time.Now()),
		Type:     event.Type,
		Data:     data,
		Context:  eventContext,
		TenantID: nullable(event.TenantID),
		Subject:  nullable(event.Subject),
	}, nil
}

// EventSummary is an event of a list: what it is and how many deliveries it
// fanned out to.
type EventSummary struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	TenantID    string     `json:"tenantId,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	FannedOutAt *time.Time `json:"fannedOutAt,omitempty"`
	Deliveries  int64      `json:"deliveries"`
}

// EventFilter selects events to list. Zero fields select all.
type EventFilter struct {
	// Type is an exact event type.
	Type string
	// Max defaults to DeliveryListMaxDefault.
	Max int
	// After is the last ID of the previous page: the list goes on with older
	// events.
	After string
}

// ListEvents returns events newest first, a page at a time.
func (s *Store) ListEvents(ctx context.Context, filter *EventFilter) ([]*EventSummary, error) {
	if filter.After != "" && !isUUID(filter.After) {
		return nil, invalid("after", "%q is not an event ID; give the last ID of the previous page", filter.After)
	}
	limit := cmp.Or(filter.Max, DeliveryListMaxDefault)
	if limit < 0 || limit > 10000 {
		return nil, invalid("limit", "%d; give 1 to 10000", limit)
	}
	rows, err := s.queries(s.pool).EventList(ctx, &dbsqlc.EventListParams{
		Type:  nullable(filter.Type),
		After: nullable(filter.After),
		Max:   int32(limit), //nolint:gosec // bounded above
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	events := make([]*EventSummary, len(rows))
	for i, row := range rows {
		events[i] = &EventSummary{
			ID: row.ID, Type: row.Type, TenantID: deref(row.TenantID),
			CreatedAt: row.CreatedAt, FannedOutAt: row.FannedOutAt, Deliveries: row.Deliveries,
		}
	}
	return events, nil
}
