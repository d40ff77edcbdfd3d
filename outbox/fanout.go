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

// FanOutDeliveriesMax bounds the deliveries one FanOutTx creates, whatever
// the number of hooks: it claims fewer events when many hooks are enabled,
// so that one transaction stays well within a job's timeout.
const FanOutDeliveriesMax = 10000

// FanOutResult is what one FanOutTx did.
type FanOutResult struct {
	// Events is how many events were claimed.
	Events int
	// Full means it claimed as many events as it could: more may wait.
	Full bool
	// Deliveries are the deliveries created, one per (event, matching hook),
	// grouped by hook in order of creation.
	Deliveries []*HookDeliveries
	// Traced are the claimed events published inside a trace.
	Traced []*TracedEvent
}

// TracedEvent is an event published inside a trace, and how many deliveries
// its fan-out created.
type TracedEvent struct {
	ID, Type, TraceParent string
	Deliveries            int
}

// HookDeliveries are deliveries to one hook.
type HookDeliveries struct {
	HookID      string
	DeliveryIDs []string
}

// HasUnclaimedEvents reports whether any event waits for fan-out.
func (s *Store) HasUnclaimedEvents(ctx context.Context) (bool, error) {
	exists, err := s.queries(s.pool).EventUnfannedExists(ctx)
	return exists, wrap(err, "look for unclaimed events")
}

// FanOutTx claims up to maxEvents unclaimed events inside tx (fewer when
// more than FanOutDeliveriesMax deliveries could follow), creates one
// delivery per (event, enabled matching hook) and marks the events fanned
// out. Concurrent calls claim disjoint events (SKIP LOCKED), and the unique
// (event, hook) constraint guarantees no second delivery, so fan-out happens
// once whatever crashes. The caller creates the deliveries' jobs in the same
// transaction.
func (s *Store) FanOutTx(ctx context.Context, tx pgx.Tx, maxEvents int) (*FanOutResult, error) {
	q := s.queries(tx)
	hooks, err := q.HookListEnabled(ctx)
	if err != nil {
		return nil, fmt.Errorf("list enabled hooks: %w", err)
	}
	maxEvents = max(min(maxEvents, FanOutDeliveriesMax/max(len(hooks), 1)), 1)
	events, err := q.EventClaimBatch(ctx, int32(maxEvents)) //nolint:gosec // a batch size
	if err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	if len(events) == 0 {
		return &FanOutResult{}, nil
	}

	res := &FanOutResult{Events: len(events), Full: len(events) == maxEvents}
	eventIDs := make([]string, len(events))
	var deliveryEventIDs, deliveryHookIDs, orderKeys []string
	var filtered []bool
	var orderSeqs []int64
	for i, event := range events {
		eventIDs[i] = event.ID
		matched := 0
		for _, hook := range hooks {
			if matchHook(hook, event) {
				deliveryEventIDs = append(deliveryEventIDs, event.ID)
				deliveryHookIDs = append(deliveryHookIDs, hook.ID)
				filtered = append(filtered, hook.Filtered)
				key, seq := "", int64(0)
				if hook.Ordered && event.Subject != nil {
					key, seq = orderKey(event.TenantID, *event.Subject), deref(event.SubjectSeq)
				}
				orderKeys, orderSeqs = append(orderKeys, key), append(orderSeqs, seq)
				matched++
			}
		}
		if event.TraceParent != nil {
			res.Traced = append(res.Traced, &TracedEvent{ID: event.ID, Type: event.Type, TraceParent: *event.TraceParent, Deliveries: matched})
		}
	}

	if len(deliveryEventIDs) > 0 {
		rows, err := q.DeliveryInsertBatch(ctx, &dbsqlc.DeliveryInsertBatchParams{
			EventIds:  deliveryEventIDs,
			HookIds:   deliveryHookIDs,
			Filtered:  filtered,
			OrderKeys: orderKeys,
			OrderSeqs: orderSeqs,
		})
		if err != nil {
			return nil, fmt.Errorf("insert %d deliveries: %w", len(deliveryEventIDs), err)
		}
		byHook := make(map[string]*HookDeliveries)
		keys := make(map[string]string) // delivery → its subject's order key
		for _, row := range rows {
			group := byHook[row.HookID]
			if group == nil {
				group = &HookDeliveries{HookID: row.HookID}
				byHook[row.HookID] = group
				res.Deliveries = append(res.Deliveries, group)
			}
			group.DeliveryIDs = append(group.DeliveryIDs, row.ID)
			if row.OrderKey != nil {
				keys[row.ID] = *row.OrderKey
			}
		}
		// A subject's deliveries side by side, so that they share a job,
		// which sends each as soon as the one before it is final
		// without waiting to be woken.
		if len(keys) > 0 {
			for _, group := range res.Deliveries {
				slices.SortStableFunc(group.DeliveryIDs, func(a, b string) int { return strings.Compare(keys[a], keys[b]) })
			}
		}
	}
	if err := q.EventMarkFannedOut(ctx, eventIDs); err != nil {
		return nil, fmt.Errorf("mark %d events fanned out: %w", len(eventIDs), err)
	}
	return res, nil
}

// orderKey is the key of an event's subject among a hook's deliveries: the
// subject qualified by its tenant, whose length leads, so that no two
// (tenant, subject) pairs make one key and no tenant's subject orders
// another's.
func orderKey(tenantID *string, subject string) string {
	tenant := deref(tenantID)
	return fmt.Sprintf("%d:%s%s", len(tenant), tenant, subject)
}

// matchHook reports whether hook subscribes to event: a filter selects its
// type, and the hook has no tenant or the event's.
func matchHook(hook *dbsqlc.HookListEnabledRow, event *dbsqlc.EventClaimBatchRow) bool {
	if hook.TenantID != nil && (event.TenantID == nil || *hook.TenantID != *event.TenantID) {
		return false
	}
	return MatchEventFilters(hook.Events, event.Type)
}

// OutboxLag returns the age of the oldest event waiting for fan-out, zero
// when none waits.
func (s *Store) OutboxLag(ctx context.Context, now time.Time) (time.Duration, error) {
	oldest, err := s.queries(s.pool).EventOldestUnfannedCreatedAt(ctx)
	if err != nil || len(oldest) == 0 {
		return 0, wrap(err, "find oldest unclaimed event")
	}
	return max(now.Sub(oldest[0]), 0), nil
}

// DeleteFinishedEvents deletes up to maxEvents events created before before
// whose deliveries are all final, with those deliveries and their attempts,
// and returns how many events it deleted.
func (s *Store) DeleteFinishedEvents(ctx context.Context, before time.Time, maxEvents int) (int64, error) {
	n, err := s.queries(s.pool).EventDeleteFinishedBefore(ctx, &dbsqlc.EventDeleteFinishedBeforeParams{
		Before: before,
		Max:    int32(maxEvents), //nolint:gosec // a batch size
	})
	return n, wrap(err, "delete finished events")
}
