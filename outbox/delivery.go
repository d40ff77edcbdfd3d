package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// Delivery statuses.
const (
	// DeliveryPending is attempted until it reaches one of the final statuses.
	DeliveryPending = "pending"
	// DeliverySucceeded got a 2xx answer.
	DeliverySucceeded = "succeeded"
	// DeliveryFailed failed its last attempt, or got 410 Gone.
	DeliveryFailed = "failed"
	// DeliveryCanceled stopped because its hook was disabled.
	DeliveryCanceled = "canceled"
)

// ResponseBodyMaxBytes is how much of a receiver's answer an attempt keeps.
const ResponseBodyMaxBytes = 4096

// DeliveryListMaxDefault is how many deliveries ListDeliveries returns unless
// told otherwise.
const DeliveryListMaxDefault = 100

// Delivery is one event sent to one hook, over one or more attempts. Its ID is
// the webhook-id header of every attempt.
type Delivery struct {
	ID             string `json:"id"`
	EventID        string `json:"eventId"`
	EventType      string `json:"eventType"`
	HookID         string `json:"hookId"`
	Status         string `json:"status"`
	AttemptCount   int    `json:"attemptCount"`
	LastStatusCode *int   `json:"lastStatusCode,omitempty"`
	LastError      string `json:"lastError,omitempty"`
	// LastDurationMS and LastAttemptAt are the latest attempt's.
	LastDurationMS *int       `json:"lastDurationMs,omitempty"`
	LastAttemptAt  *time.Time `json:"lastAttemptAt,omitempty"`
	// NextAttemptAt is when a pending delivery's next attempt is due, once
	// an attempt failed.
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	FinishedAt    *time.Time `json:"finishedAt,omitempty"`
	// Body is the request body every attempt sends; Attempts are the
	// attempts, oldest first. GetDelivery fills both.
	Body     json.RawMessage `json:"body,omitempty"`
	Attempts []*Attempt      `json:"attempts,omitempty"`
	// PassesFilter tells, for a test delivery to a hook with a filter,
	// whether its sample event passes the filter (a test is sent anyway).
	PassesFilter *bool `json:"passesFilter,omitempty"`
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	Attempt      int       `json:"attempt"`
	StatusCode   *int      `json:"statusCode,omitempty"`
	Error        string    `json:"error,omitempty"`
	DurationMS   int       `json:"durationMs"`
	ResponseBody string    `json:"responseBody,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
}

// DeliveryFilter selects deliveries to list. Zero fields select all.
type DeliveryFilter struct {
	HookID string
	// EventID selects the deliveries an event fanned out to.
	EventID string
	// Status is one of the Delivery… statuses.
	Status string
	// Max defaults to DeliveryListMaxDefault.
	Max int
	// After is the last ID of the previous page: the list goes on with older
	// deliveries.
	After string
}

// ListDeliveries returns deliveries matching filter, newest first.
func (s *Store) ListDeliveries(ctx context.Context, filter *DeliveryFilter) ([]*Delivery, error) {
	if err := validateStatus(filter.Status); err != nil {
		return nil, err
	}
	if filter.HookID != "" && !isUUID(filter.HookID) {
		return nil, missing(ErrHookNotFound, filter.HookID)
	}
	if filter.EventID != "" && !isUUID(filter.EventID) {
		return nil, missing(ErrEventNotFound, filter.EventID)
	}
	if filter.After != "" && !isUUID(filter.After) {
		return nil, invalid("after", "%q is not a delivery ID; give the last ID of the previous page", filter.After)
	}
	limit := filter.Max
	if limit == 0 {
		limit = DeliveryListMaxDefault
	}
	if limit < 0 || limit > 10000 {
		return nil, invalid("limit", "%d; give 1 to 10000", limit)
	}
	q := s.queries(s.pool)
	deliveries := []*Delivery{}
	if filter.HookID != "" {
		rows, err := q.DeliveryListByHook(ctx, &dbsqlc.DeliveryListByHookParams{
			HookID:  filter.HookID,
			EventID: nullable(filter.EventID),
			Status:  nullable(filter.Status),
			After:   nullable(filter.After),
			Max:     int32(limit), //nolint:gosec // bounded above
		})
		if err != nil {
			return nil, fmt.Errorf("list deliveries of hook %s: %w", filter.HookID, err)
		}
		for _, row := range rows {
			deliveries = append(deliveries, deliveryFromRow(&row.Delivery, row.EventType))
		}
		return deliveries, nil
	}
	rows, err := q.DeliveryList(ctx, &dbsqlc.DeliveryListParams{
		EventID: nullable(filter.EventID),
		Status:  nullable(filter.Status),
		After:   nullable(filter.After),
		Max:     int32(limit), //nolint:gosec // bounded above
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	for _, row := range rows {
		deliveries = append(deliveries, deliveryFromRow(&row.Delivery, row.EventType))
	}
	return deliveries, nil
}

// LastFailedDeliveries returns each of the hooks' latest failed delivery, by
// hook ID; a hook without one is absent.
func (s *Store) LastFailedDeliveries(ctx context.Context, hookIDs []string) (map[string]*Delivery, error) {
	hookIDs = slices.DeleteFunc(slices.Clone(hookIDs), func(id string) bool { return !isUUID(id) })
	rows, err := s.queries(s.pool).DeliveryLastFailedMany(ctx, hookIDs)
	if err != nil {
		return nil, fmt.Errorf("find the last failures of %d hooks: %w", len(hookIDs), err)
	}
	last := make(map[string]*Delivery, len(rows))
	for _, row := range rows {
		last[row.Delivery.HookID] = deliveryFromRow(&row.Delivery, row.EventType)
	}
	return last, nil
}

// GetDelivery returns the delivery with the given ID and its attempts, or
// ErrDeliveryNotFound.
func (s *Store) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	if !isUUID(id) {
		return nil, missing(ErrDeliveryNotFound, id)
	}
	q := s.queries(s.pool)
	row, err := q.DeliveryGetByID(ctx, id)
	if err != nil {
		return nil, lookupErr(err, ErrDeliveryNotFound, id, "get delivery %s", id)
	}
	attempts, err := q.DeliveryAttemptList(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts of delivery %s: %w", id, err)
	}
	delivery := deliveryFromRow(&row.Delivery, row.Event.Type)
	if delivery.Body, err = buildBody(row.Hook.ID, &row.Event); err != nil {
		return nil, err
	}
	delivery.Attempts = make([]*Attempt, 0, len(attempts)+1)
	for _, a := range attempts {
		delivery.Attempts = append(delivery.Attempts, &Attempt{
			Attempt:      int(a.Attempt),
			StatusCode:   intPtr(a.StatusCode),
			Error:        deref(a.Error),
			DurationMS:   int(a.DurationMs),
			ResponseBody: deref(a.ResponseBody),
			CreatedAt:    a.CreatedAt,
		})
	}
	// A successful attempt lives on the delivery only.
	if d := row.Delivery; d.Status == DeliverySucceeded && d.LastAttemptAt != nil {
		delivery.Attempts = append(delivery.Attempts, &Attempt{
			Attempt:      int(d.Attempts),
			StatusCode:   intPtr(d.LastStatusCode),
			DurationMS:   int(deref(d.LastDurationMs)),
			ResponseBody: deref(d.LastResponseBody),
			CreatedAt:    *d.LastAttemptAt,
		})
	}
	return delivery, nil
}

// Send is what one attempt of a delivery needs.
type Send struct {
	DeliveryID string
	Status     string
	// Attempts is how many attempts the delivery has had, across replays.
	Attempts int
	// ReplayedAttempts is how many it had when it was last replayed: the
	// next attempt is the (Attempts-ReplayedAttempts+1)th of the retry
	// schedule.
	ReplayedAttempts int
	// NextAttemptAt is when the delivery is due; nil means now.
	NextAttemptAt *time.Time
	Hook          *Hook
	// EventID and EventType are the delivery's event's.
	EventID, EventType string
	Body               []byte
	// TraceParent is the publisher's W3C trace context, or "".
	TraceParent string
	// OrderKey, for a hook ordered by subject, is the key of the event's
	// subject, and OrderSeq its place among the subject's events; "" while
	// the delivery is final or unordered. WaitingJob is the deliver job
	// that last held it back, or 0.
	OrderKey   string
	OrderSeq   int64
	WaitingJob int64
}

// LoadSends loads the given deliveries with their hooks and builds their
// bodies, in one round trip. Deliveries that no longer exist (their hook or
// event was deleted) are left out.
func (s *Store) LoadSends(ctx context.Context, ids []string) ([]*Send, error) {
	rows, err := s.queries(s.pool).DeliveryGetForSendMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d deliveries: %w", len(ids), err)
	}
	sends := make([]*Send, 0, len(rows))
	for _, row := range rows {
		hook, err := hookFromRow(&row.Hook)
		if err != nil {
			return nil, err
		}
		body, err := buildBody(hook.ID, &row.Event)
		if err != nil {
			return nil, err
		}
		sends = append(sends, &Send{
			DeliveryID:       row.Delivery.ID,
			Status:           row.Delivery.Status,
			Attempts:         int(row.Delivery.Attempts),
			ReplayedAttempts: int(row.Delivery.ReplayedAttempts),
			NextAttemptAt:    row.Delivery.NextAttemptAt,
			Hook:             hook,
			EventID:          row.Event.ID,
			EventType:        row.Event.Type,
			Body:             body,
			TraceParent:      deref(row.Event.TraceParent),
			OrderKey:         deref(row.Delivery.OrderKey),
			OrderSeq:         deref(row.Delivery.OrderSeq),
			WaitingJob:       deref(row.Delivery.WaitingJob),
		})
	}
	return sends, nil
}

// AttemptResult is the outcome of one request.
type AttemptResult struct {
	// Attempt numbers the request, from 1.
	Attempt int
	// At is when the request started.
	At time.Time
	// StatusCode is the receiver's answer, 0 when there was none.
	StatusCode int
	// Error says why there was no answer, or what was wrong with it.
	Error string
	// Duration is from the request's start to the end of its answer.
	Duration time.Duration
	// ResponseBody is the start of the receiver's answer; it is cut to
	// ResponseBodyMaxBytes.
	ResponseBody []byte
}

// AttemptRecord is one attempt to record: Result of a request for Send,
// which moves the delivery to Status, and, when it stays pending, when its
// next attempt is due.
type AttemptRecord struct {
	Send          *Send
	Result        *AttemptResult
	Status        string
	NextAttemptAt time.Time
	// Test marks a test-send's attempt: its failure is no Delivery.Failed.
	Test bool
}

// RecordAttemptsTx records attempts inside tx, in one statement: each on its
// delivery (and as an attempt row unless it is the delivery's success),
// moving a delivery that is still pending to its status and updating its
// hook's run of failures (Hook.FailingSince). An attempt is recorded only if
// its delivery still has the attempts it had when loaded (Result.Attempt - 1),
// so an outcome that another run overtook changes nothing; a delivery
// canceled or deleted meanwhile keeps its fate. It returns the status of each
// delivery it recorded, by ID.
func (s *Store) RecordAttemptsTx(ctx context.Context, tx pgx.Tx, records []*AttemptRecord) (map[string]string, error) {
	statuses, err := s.recordAttempts(ctx, tx, records)
	if err != nil {
		return nil, err
	}
	// A delivery that failed its last attempt is reported, in the same
	// transaction, unless it delivered an operational event itself.
	for _, r := range records {
		if r.Status != DeliveryFailed || statuses[r.Send.DeliveryID] != DeliveryFailed || r.Test || IsOperational(r.Send.EventType) {
			continue
		}
		failure := &DeliveryFailure{ID: r.Send.DeliveryID, HookID: r.Send.Hook.ID, EventID: r.Send.EventID, EventType: r.Send.EventType,
			Attempts: r.Result.Attempt, LastStatusCode: r.Result.StatusCode, LastError: r.Result.Error}
		if _, err := s.PublishTx(ctx, tx, failure.Event(r.Send.Hook.TenantID)); err != nil {
			return nil, fmt.Errorf("publish the failure of delivery %s: %w", r.Send.DeliveryID, err)
		}
	}
	return statuses, nil
}

// RecordAttempts is RecordAttemptsTx in a transaction of its own.
func (s *Store) RecordAttempts(ctx context.Context, records []*AttemptRecord) (map[string]string, error) {
	var statuses map[string]string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		statuses, err = s.RecordAttemptsTx(ctx, tx, records)
		return err
	})
	return statuses, err
}

func (s *Store) recordAttempts(ctx context.Context, db dbsqlc.DBTX, records []*AttemptRecord) (map[string]string, error) {
	p := &dbsqlc.DeliveryRecordAttemptsParams{}
	for _, r := range records {
		p.DeliveryIds = append(p.DeliveryIds, r.Send.DeliveryID)
		p.Attempts = append(p.Attempts, int32(r.Result.Attempt))          //nolint:gosec // attempts are few
		p.StatusCodes = append(p.StatusCodes, int32(r.Result.StatusCode)) //nolint:gosec // HTTP status codes are small
		p.Errors = append(p.Errors, cleanText(r.Result.Error, 1024))
		p.DurationsMs = append(p.DurationsMs, int32(min(r.Result.Duration.Milliseconds(), 1<<31-1))) //nolint:gosec // clamped
		p.ResponseBodies = append(p.ResponseBodies, cleanText(string(r.Result.ResponseBody), ResponseBodyMaxBytes))
		p.Statuses = append(p.Statuses, r.Status)
		p.AttemptedAt = append(p.AttemptedAt, r.Result.At)
		p.NextAttemptAt = append(p.NextAttemptAt, r.NextAttemptAt)
	}
	rows, err := s.queries(db).DeliveryRecordAttempts(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("record %d attempts: %w", len(records), err)
	}
	statuses := make(map[string]string, len(rows))
	for _, row := range rows {
		statuses[row.ID] = row.Status
	}
	return statuses, nil
}

// CancelDeliveries ends the given deliveries as canceled, recording reason,
// unless they are final already.
func (s *Store) CancelDeliveries(ctx context.Context, ids []string, reason string) error {
	err := s.queries(s.pool).DeliveryCancelMany(ctx, &dbsqlc.DeliveryCancelManyParams{Ids: ids, Reason: &reason})
	return wrap(err, "cancel %d deliveries", len(ids))
}

// HoldBack returns those of sends, deliveries of a hook ordered by subject,
// that come after a delivery of their subject that is not final yet (or an
// event not fanned out yet), each mapped to the soonest that one may become
// final (its next attempt), and notes that job jobID holds them back. It notes first, in a statement of its own, and looks after: whoever
// finishes a delivery before one of them either reads the note, and wakes
// the job, or holds the lock of the delivery noted until it commits, and the
// look then finds it final (see WaitingAfterTx).
func (s *Store) HoldBack(ctx context.Context, jobID int64, sends []*Send) (map[string]time.Time, error) {
	var all, unnoted []string
	for _, send := range sends {
		all = append(all, send.DeliveryID)
		if send.WaitingJob != jobID {
			unnoted = append(unnoted, send.DeliveryID)
		}
	}
	q := s.queries(s.pool)
	if len(unnoted) > 0 {
		if err := q.DeliveryWaitOn(ctx, &dbsqlc.DeliveryWaitOnParams{JobID: &jobID, Ids: unnoted}); err != nil {
			return nil, fmt.Errorf("note the job of %d ordered deliveries: %w", len(unnoted), err)
		}
	}
	rows, err := q.DeliveryHeldBack(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("look for the predecessors of %d ordered deliveries: %w", len(all), err)
	}
	held := make(map[string]time.Time, len(rows))
	for _, row := range rows {
		held[row.ID] = row.Until
	}
	return held, nil
}

// WaitingAfterTx returns, inside tx, the deliver jobs that hold back the next
// delivery of the subjects of finished, ordered deliveries that tx made
// final: they may send it now.
func (s *Store) WaitingAfterTx(ctx context.Context, tx pgx.Tx, finished []*Send) ([]int64, error) {
	p := &dbsqlc.DeliveryWaitingAfterParams{}
	for _, send := range finished {
		p.HookIds = append(p.HookIds, send.Hook.ID)
		p.OrderKeys = append(p.OrderKeys, send.OrderKey)
		p.OrderSeqs = append(p.OrderSeqs, send.OrderSeq)
	}
	jobs, err := s.queries(tx).DeliveryWaitingAfter(ctx, p)
	return jobs, wrap(err, "look for the jobs waiting after %d ordered deliveries", len(finished))
}

// LeaseTx makes the given deliveries not due before until, inside tx, each
// only while it has not had an attempt since it was loaded: their requests
// are in flight and record their own outcomes.
func (s *Store) LeaseTx(ctx context.Context, tx pgx.Tx, sends []*Send, until time.Time) error {
	p := &dbsqlc.DeliveryLeaseParams{Until: until}
	for _, send := range sends {
		p.Ids = append(p.Ids, send.DeliveryID)
		p.Attempts = append(p.Attempts, int32(send.Attempts)) //nolint:gosec // attempts are few
	}
	return wrap(s.queries(tx).DeliveryLease(ctx, p), "lease %d deliveries", len(sends))
}

// MakeDueTx makes a pending delivery due at once, inside tx: a replay of a
// delivery whose job was lost sends it now, not at its next attempt.
func (s *Store) MakeDueTx(ctx context.Context, tx pgx.Tx, id string) error {
	return wrap(s.queries(tx).DeliveryMakeDue(ctx, id), "make delivery %s due", id)
}

// ReplayRange selects a hook's deliveries to replay.
type ReplayRange struct {
	HookID string
	Since  time.Time
	// Until defaults to now.
	Until time.Time
	// Status selects the finished deliveries to send again: failed (the
	// default), succeeded, canceled, or all of them (ReplayAllFinished).
	// Re-sending successes is a choice made explicitly.
	Status string
}

// ReplayAllFinished is the ReplayRange.Status that replays every finished
// delivery in the range: failed, succeeded and canceled.
const ReplayAllFinished = "all"

// ReplayMaxDeliveries bounds one range replay.
const ReplayMaxDeliveries = 100000

// ResetDeliveriesTx makes the given finished deliveries pending again, inside
// tx, and returns the IDs it reset; pending ones are skipped, as they have a
// job already.
func (s *Store) ResetDeliveriesTx(ctx context.Context, tx pgx.Tx, ids []string) ([]string, error) {
	for _, id := range ids {
		if !isUUID(id) {
			return nil, missing(ErrDeliveryNotFound, id)
		}
	}
	reset, err := s.queries(tx).DeliveryReset(ctx, ids)
	return reset, wrap(err, "reset deliveries")
}

// DeliveryIDsInRange returns the IDs of the deliveries r selects.
func (s *Store) DeliveryIDsInRange(ctx context.Context, r *ReplayRange) ([]string, error) {
	if !isUUID(r.HookID) {
		return nil, missing(ErrHookNotFound, r.HookID)
	}
	status := cmp.Or(r.Status, DeliveryFailed)
	switch status {
	case DeliveryFailed, DeliverySucceeded, DeliveryCanceled:
	case ReplayAllFinished:
		status = ""
	default:
		return nil, invalid("status", "%q; replay failed (the default), succeeded, canceled or all deliveries", r.Status)
	}
	until := r.Until
	if until.IsZero() {
		until = time.Now()
	}
	if r.Since.IsZero() || !r.Since.Before(until) {
		return nil, invalid("time range", "since must be set and before until")
	}
	if _, err := s.GetHook(ctx, r.HookID); err != nil {
		return nil, err
	}
	ids, err := s.queries(s.pool).DeliveryListIDsForReplay(ctx, &dbsqlc.DeliveryListIDsForReplayParams{
		HookID: r.HookID,
		Since:  r.Since,
		Until:  until,
		Status: nullable(status),
		Max:    ReplayMaxDeliveries,
	})
	return ids, wrap(err, "list deliveries of hook %s to replay", r.HookID)
}

func validateStatus(status string) error {
	switch status {
	case "", DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliveryCanceled:
		return nil
	}
	return invalid("status", "%q; use pending, succeeded, failed or canceled", status)
}

// cleanText makes s storable as Postgres text: valid UTF-8, no NUL, at most
// maxBytes.
func cleanText(s string, maxBytes int) string {
	if len(s) > maxBytes {
		s = s[:maxBytes] // a rune cut in two becomes U+FFFD below
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

func intPtr(p *int32) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

func deliveryFromRow(row *dbsqlc.Delivery, eventType string) *Delivery {
	return &Delivery{
		ID:             row.ID,
		EventID:        row.EventID,
		EventType:      eventType,
		NextAttemptAt:  row.NextAttemptAt,
		HookID:         row.HookID,
		Status:         row.Status,
		AttemptCount:   int(row.Attempts),
		LastStatusCode: intPtr(row.LastStatusCode),
		LastError:      deref(row.LastError),
		LastDurationMS: intPtr(row.LastDurationMs),
		LastAttemptAt:  row.LastAttemptAt,
		CreatedAt:      row.CreatedAt,
		UpdatedAt:      row.UpdatedAt,
		FinishedAt:     row.FinishedAt,
	}
}

// CreateTestDelivery records a test-send to the hook: a delivery of a sample
// eventType event that no other hook receives, with "test": true in its body.
// An empty eventType is the first type the hook receives (PostSignIn for
// *). The caller attempts it once.
func (s *Store) CreateTestDelivery(ctx context.Context, hookID, eventType string) (string, error) {
	return s.createTestDelivery(ctx, s.pool, hookID, eventType)
}

// CreateTestDeliveryTx is CreateTestDelivery inside tx, so that the job that
// sends it commits with it.
func (s *Store) CreateTestDeliveryTx(ctx context.Context, tx pgx.Tx, hookID, eventType string) (string, error) {
	return s.createTestDelivery(ctx, tx, hookID, eventType)
}

func (s *Store) createTestDelivery(ctx context.Context, db dbsqlc.DBTX, hookID, eventType string) (string, error) {
	hook, err := s.GetHook(ctx, hookID)
	if err != nil {
		return "", err
	}
	if eventType == "" {
		if eventType, err = s.sampleEventType(ctx, hook); err != nil {
			return "", err
		}
	}
	if err := ValidateEventType(eventType); err != nil {
		return "", err
	}
	id, err := s.queries(db).DeliveryInsertTest(ctx, &dbsqlc.DeliveryInsertTestParams{
		Type:   eventType,
		Data:   []byte(`{"id":"test","description":"a test delivery sent by hookrelay"}`),
		HookID: hookID,
	})
	return id, wrap(err, "create test delivery for hook %s", hookID)
}

// sampleEventType is the first type the hook receives: the first exact type
// among its filters, or the first catalogue or registered type one of its
// wildcards matches.
func (s *Store) sampleEventType(ctx context.Context, hook *Hook) (string, error) {
	types, err := s.EventTypes(ctx)
	if err != nil {
		return "", err
	}
	for _, filter := range hook.Events {
		if filter == "*" {
			return EventPostSignIn, nil
		}
		if !strings.HasSuffix(filter, ".*") {
			return filter, nil
		}
		for _, t := range types {
			if MatchEventFilter(filter, t.Name) {
				return t.Name, nil
			}
		}
	}
	return EventPostSignIn, nil
}

// DeliveryCounts are how many deliveries there are of each status.
type DeliveryCounts struct {
	// Pending excludes Retrying.
	Pending, Retrying, Succeeded, Failed, Canceled int64
}

// CountDeliveries counts all deliveries by status. It reads the whole table,
// so it is meant for small databases (the demo, tests).
func (s *Store) CountDeliveries(ctx context.Context) (*DeliveryCounts, error) {
	rows, err := s.queries(s.pool).DeliveryCountByStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	counts := &DeliveryCounts{}
	for _, row := range rows {
		switch {
		case row.Retrying:
			counts.Retrying += row.Count
		case row.Status == DeliveryPending:
			counts.Pending += row.Count
		case row.Status == DeliverySucceeded:
			counts.Succeeded += row.Count
		case row.Status == DeliveryFailed:
			counts.Failed += row.Count
		case row.Status == DeliveryCanceled:
			counts.Canceled += row.Count
		}
	}
	return counts, nil
}

// PendingDelivery is a delivery not yet final.
type PendingDelivery struct {
	ID     string
	HookID string
}

// ListPendingDeliveriesTx returns up to maxDeliveries pending deliveries
// last changed before before, oldest first, as tx sees them. It reads the
// whole table: it is for the reconciler, every few minutes.
func (s *Store) ListPendingDeliveriesTx(ctx context.Context, tx pgx.Tx, before time.Time, maxDeliveries int) ([]*PendingDelivery, error) {
	rows, err := s.queries(tx).DeliveryListPendingBefore(ctx, &dbsqlc.DeliveryListPendingBeforeParams{
		Before: before,
		Max:    int32(maxDeliveries), //nolint:gosec // a batch size
	})
	if err != nil {
		return nil, fmt.Errorf("list pending deliveries: %w", err)
	}
	pending := make([]*PendingDelivery, len(rows))
	for i, row := range rows {
		pending[i] = &PendingDelivery{ID: row.ID, HookID: row.HookID}
	}
	return pending, nil
}
