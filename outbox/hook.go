package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// Limits on a hook's configuration.
const (
	HookNameMaxLength     = 256
	HookURLMaxLength      = 2048
	HookEventsMax         = 100
	HookHeadersMax        = 50
	HookHeaderValueMaxLen = 4096
	TenantIDMaxLength     = 256
	HooksMax              = 10000
	HookFilterMaxLength   = 1024
)

// RotateOverlapDefault is how long the previous signing key keeps signing
// after a rotation, so receivers can switch keys without losing a delivery.
const RotateOverlapDefault = 24 * time.Hour

// Hook is a subscription: a URL that receives the events its filters select.
type Hook struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	URL     string            `json:"url"`
	Events  []string          `json:"events"`
	Headers map[string]string `json:"headers"`
	// TenantID, when set, limits the hook to that tenant's events.
	TenantID string `json:"tenantId,omitempty"`
	// RateLimit, when set, bounds the requests to the hook, N/s or N/m,
	// across every process; RateBurst allows as many more at once after a
	// quiet spell.
	RateLimit string `json:"rateLimit,omitempty"`
	RateBurst int    `json:"rateBurst,omitempty"`
	// Ordering is OrderingSubject or OrderingNone (see HookParams.Ordering).
	Ordering string `json:"ordering"`
	// Filter, when set, is a SQL/JSON path predicate that an event must pass
	// (see HookParams.Filter).
	Filter         string `json:"filter,omitempty"`
	Enabled        bool   `json:"enabled"`
	DisabledReason string `json:"disabledReason,omitempty"`
	// SigningKey signs every delivery; it is a secret.
	SigningKey string `json:"signingKey"`
	// PreviousSigningKey also signs deliveries until PreviousKeyExpiresAt,
	// the overlap of a rotation.
	PreviousSigningKey   string     `json:"previousSigningKey,omitempty"`
	PreviousKeyExpiresAt *time.Time `json:"previousKeyExpiresAt,omitempty"`
	// KeyRotatedAt is when SigningKey replaced the one before.
	KeyRotatedAt *time.Time `json:"keyRotatedAt,omitempty"`
	// FailingSince is the first failed attempt of the hook's current run of
	// failures; a success clears it.
	FailingSince *time.Time `json:"failingSince,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
}

// Redacted returns a copy of the hook with its signing keys and custom
// header values cut to their last four characters, for printing: they are
// shown on creation and on request only, as Logto's console and Svix do
// with keys. Custom headers often carry credentials (Authorization: Bearer
// …).
func (h *Hook) Redacted() *Hook {
	redacted := *h
	redacted.SigningKey = redactKey(h.SigningKey)
	redacted.PreviousSigningKey = redactKey(h.PreviousSigningKey)
	if h.Headers != nil {
		redacted.Headers = make(map[string]string, len(h.Headers))
		for name, value := range h.Headers {
			redacted.Headers[name] = RedactHeaderValue(value)
		}
	}
	return &redacted
}

// RedactHeaderValue cuts a custom header's value to "****" and, when it is
// long enough to keep them secret, its last four characters.
func RedactHeaderValue(value string) string {
	if len(value) <= 12 {
		return "****"
	}
	return "****" + value[len(value)-4:]
}

func redactKey(key string) string {
	if len(key) < 4 {
		return key
	}
	return SigningKeyPrefix + "****" + key[len(key)-4:]
}

// SigningKeys returns the keys that sign a delivery at now: the current one,
// then the previous one during a rotation's overlap.
func (h *Hook) SigningKeys(now time.Time) []string {
	keys := []string{h.SigningKey}
	if h.PreviousSigningKey != "" && h.PreviousKeyExpiresAt != nil && now.Before(*h.PreviousKeyExpiresAt) {
		keys = append(keys, h.PreviousSigningKey)
	}
	return keys
}

// HookParams are the settings of a new hook.
type HookParams struct {
	// Name describes the hook. Defaults to the URL's host.
	Name string
	// URL receives the deliveries: http or https.
	URL string
	// Events are the filters: event types, prefix wildcards (User.*) or *.
	Events []string
	// Headers are sent with every delivery. They may not replace the
	// signature headers, Content-Type or User-Agent.
	Headers map[string]string
	// TenantID, when set, limits the hook to that tenant's events.
	TenantID string
	// RateLimit, N/s or N/m, bounds the requests to the hook across every
	// process; empty is no limit. RateBurst allows as many more at once
	// after a quiet spell.
	RateLimit string
	RateBurst int
	// Ordering OrderingSubject sends a delivery only once every earlier
	// delivery of its event's subject to the hook is final (succeeded,
	// failed or canceled); "" or OrderingNone sends in no order.
	Ordering string
	// Filter, when set, is a SQL/JSON path predicate on
	// {"event": type, "tenantId": …, "data": …, "context": …}, such as
	// $.data.organizationId == "org_1": an event for which it is false,
	// unknown or an error makes no delivery to the hook. At most
	// HookFilterMaxLength characters.
	Filter string
	// Disabled creates the hook disabled.
	Disabled bool
}

// HookUpdate changes some settings of a hook; nil fields are left as they are.
type HookUpdate struct {
	Name     *string
	URL      *string
	Events   []string
	Headers  map[string]string
	TenantID *string
	// RateLimit "" removes the limit, Filter "" the filter.
	RateLimit *string
	RateBurst *int
	Filter    *string
	// Ordering applies to deliveries fanned out from then on.
	Ordering *string
}

// A hook's orderings.
const (
	OrderingNone    = "none"
	OrderingSubject = "subject"
)

// orderingColumn validates a hook's ordering, "" meaning none.
func orderingColumn(ordering string) (string, error) {
	switch ordering {
	case "", OrderingNone:
		return OrderingNone, nil
	case OrderingSubject:
		return ordering, nil
	}
	return "", invalid("ordering", "%q; it is %q or %q", ordering, OrderingSubject, OrderingNone)
}

// ParseHeaders turns 'Name: value' lines into a map of custom headers,
// refusing malformed lines and duplicate names.
func ParseHeaders(lines []string) (map[string]string, error) {
	headers := make(map[string]string, len(lines))
	for _, line := range lines {
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, invalid("header", "%q: write it as 'Name: value'", line)
		}
		for existing := range headers {
			if strings.EqualFold(existing, name) {
				return nil, invalid("header", "duplicate %q", name)
			}
		}
		headers[name] = strings.TrimSpace(value)
	}
	return headers, nil
}

// reservedHeaders are set by hookrelay on every request, or belong to the
// connection, so a hook's custom headers may not set them.
var reservedHeaders = []string{
	"webhook-id", "webhook-timestamp", "webhook-signature", "logto-signature-sha-256",
	"content-type", "content-length", "user-agent", "host",
	"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade",
}

// CreateHook validates params and stores a new hook with a fresh signing key.
func (s *Store) CreateHook(ctx context.Context, params *HookParams) (*Hook, error) {
	p := *params
	if p.Name == "" {
		if u, err := url.Parse(p.URL); err == nil {
			p.Name = u.Hostname()
		}
	}
	events, headers, err := validateHook(p.Name, p.URL, p.Events, p.Headers, p.TenantID)
	if err == nil {
		err = s.checkFilters(ctx, events)
	}
	if err != nil {
		return nil, err
	}
	rateCount, ratePeriodS, rateBurst, err := rateColumns(p.RateLimit, p.RateBurst)
	if err == nil {
		err = s.checkFilter(ctx, p.Filter)
	}
	ordering, orderingErr := orderingColumn(p.Ordering)
	if err = cmp.Or(err, orderingErr); err != nil {
		return nil, err
	}
	var row *dbsqlc.Hook
	err = s.withHookChange(ctx, func(q *dbsqlc.Queries) (*Event, error) {
		count, err := q.HookCount(ctx)
		if err != nil {
			return nil, fmt.Errorf("count hooks: %w", err)
		}
		if count >= HooksMax {
			return nil, invalid("hook", "there are %d hooks already, the most hookrelay serves; delete unused ones", count)
		}
		if row, err = q.HookInsert(ctx, &dbsqlc.HookInsertParams{
			Name:        p.Name,
			Url:         p.URL,
			Events:      events,
			Headers:     headers,
			TenantID:    nullable(p.TenantID),
			Enabled:     !p.Disabled,
			SigningKey:  NewSigningKey(),
			RateCount:   rateCount,
			RatePeriodS: ratePeriodS,
			RateBurst:   rateBurst,
			Filter:      nullable(p.Filter),
			Ordering:    ordering,
		}); err != nil {
			return nil, fmt.Errorf("insert hook: %w", err)
		}
		return rowEvent(HookCreated, row)
	})
	if err != nil {
		return nil, err
	}
	return hookFromRow(row)
}

// withHookChange runs change in a transaction with the operational event it
// returns, published in the same transaction.
func (s *Store) withHookChange(ctx context.Context, change func(q *dbsqlc.Queries) (*Event, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		event, err := change(s.queries(tx))
		if err == nil {
			_, err = s.PublishTx(ctx, tx, event)
		}
		return err
	})
}

// rowEvent is the operational event of build about the hook of row.
func rowEvent(build func(*Hook) *Event, row *dbsqlc.Hook) (*Event, error) {
	hook, err := hookFromRow(row)
	if err != nil {
		return nil, err
	}
	return build(hook), nil
}

// GetHook returns the hook with the given ID, or ErrHookNotFound.
func (s *Store) GetHook(ctx context.Context, id string) (*Hook, error) {
	if !isUUID(id) {
		return nil, missing(ErrHookNotFound, id)
	}
	row, err := s.queries(s.pool).HookGetByID(ctx, id)
	if err != nil {
		return nil, lookupErr(err, ErrHookNotFound, id, "get hook %s", id)
	}
	return hookFromRow(row)
}

// ListHooks returns every hook, oldest first.
func (s *Store) ListHooks(ctx context.Context) ([]*Hook, error) {
	rows, err := s.queries(s.pool).HookList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	hooks := make([]*Hook, len(rows))
	for i, row := range rows {
		if hooks[i], err = hookFromRow(row); err != nil {
			return nil, err
		}
	}
	return hooks, nil
}

// UpdateHook applies update to the hook with the given ID and returns it.
func (s *Store) UpdateHook(ctx context.Context, id string, update *HookUpdate) (*Hook, error) {
	hook, err := s.GetHook(ctx, id)
	if err != nil {
		return nil, err
	}
	setIfNotNil(&hook.Name, update.Name)
	setIfNotNil(&hook.URL, update.URL)
	setIfNotNil(&hook.TenantID, update.TenantID)
	setIfNotNil(&hook.RateLimit, update.RateLimit)
	setIfNotNil(&hook.RateBurst, update.RateBurst)
	setIfNotNil(&hook.Filter, update.Filter)
	setIfNotNil(&hook.Ordering, update.Ordering)
	if hook.RateLimit == "" && update.RateLimit != nil && update.RateBurst == nil {
		hook.RateBurst = 0 // removing the limit removes its burst
	}
	if update.Events != nil {
		hook.Events = update.Events
	}
	if update.Headers != nil {
		hook.Headers = update.Headers
	}
	events, headers, err := validateHook(hook.Name, hook.URL, hook.Events, hook.Headers, hook.TenantID)
	if err == nil && update.Events != nil {
		err = s.checkFilters(ctx, events)
	}
	if err != nil {
		return nil, err
	}
	rateCount, ratePeriodS, rateBurst, err := rateColumns(hook.RateLimit, hook.RateBurst)
	if err == nil && update.Filter != nil {
		err = s.checkFilter(ctx, hook.Filter)
	}
	ordering, orderingErr := orderingColumn(hook.Ordering)
	if err = cmp.Or(err, orderingErr); err != nil {
		return nil, err
	}
	var row *dbsqlc.Hook
	err = s.withHookChange(ctx, func(q *dbsqlc.Queries) (*Event, error) {
		var err error
		if row, err = q.HookUpdate(ctx, &dbsqlc.HookUpdateParams{
			ID:          id,
			Name:        hook.Name,
			Url:         hook.URL,
			Events:      events,
			Headers:     headers,
			TenantID:    nullable(hook.TenantID),
			RateCount:   rateCount,
			RatePeriodS: ratePeriodS,
			RateBurst:   rateBurst,
			Filter:      nullable(hook.Filter),
			Ordering:    ordering,
		}); err != nil {
			return nil, lookupErr(err, ErrHookNotFound, id, "update hook %s", id)
		}
		return rowEvent(HookUpdated, row)
	})
	if err != nil {
		return nil, err
	}
	return hookFromRow(row)
}

// DeleteHook deletes the hook with the given ID with its deliveries; pending
// deliveries stop. It returns ErrHookNotFound when there is no such hook.
func (s *Store) DeleteHook(ctx context.Context, id string) error {
	if !isUUID(id) {
		return missing(ErrHookNotFound, id)
	}
	return s.withHookChange(ctx, func(q *dbsqlc.Queries) (*Event, error) {
		row, err := q.HookDelete(ctx, id)
		if err != nil {
			return nil, lookupErr(err, ErrHookNotFound, id, "delete hook %s", id)
		}
		return rowEvent(HookDeleted, row)
	})
}

// EnableHook enables the hook and clears its failure record. Deliveries
// canceled while it was disabled stay canceled; replay them if they matter.
func (s *Store) EnableHook(ctx context.Context, id string) (*Hook, error) {
	var hook *Hook
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if hook, err = s.setHookEnabled(ctx, tx, id, true, ""); err == nil {
			_, err = s.PublishTx(ctx, tx, HookEnabled(hook))
		}
		return err
	})
	return hook, err
}

// DisableHook disables the hook, recording reason, unless it is disabled
// already, then cancels its pending deliveries (see CancelPendingOfHook).
func (s *Store) DisableHook(ctx context.Context, id, reason string) (*Hook, error) {
	var hook *Hook
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		hook, _, err = s.DisableHookTx(ctx, tx, id, reason, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return hook, s.CancelPendingOfHook(ctx, id)
}

// DisableHookTx disables the hook in tx, so that a delivery's outcome and
// the hook's disabling commit together, unless it is disabled already.
// announce publishes Hook.Disabled in tx when it disables it: not when a
// delivery of an operational event disabled the hook. Its pending
// deliveries are left: call CancelPendingOfHook once tx commits (its
// deliver jobs cancel any left at their next run). disabled tells whether tx
// disabled it.
func (s *Store) DisableHookTx(ctx context.Context, tx pgx.Tx, id, reason string, announce bool) (hook *Hook, disabled bool, err error) {
	if !isUUID(id) {
		return nil, false, missing(ErrHookNotFound, id)
	}
	q := s.queries(tx)
	row, err := q.HookDisable(ctx, &dbsqlc.HookDisableParams{ID: id, DisabledReason: nullable(reason)})
	if errors.Is(err, pgx.ErrNoRows) { // disabled already, or missing
		if row, err = q.HookGetByID(ctx, id); err != nil {
			return nil, false, lookupErr(err, ErrHookNotFound, id, "get hook %s", id)
		}
		hook, err = hookFromRow(row)
		return hook, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("disable hook %s: %w", id, err)
	}
	if hook, err = hookFromRow(row); err == nil && announce {
		_, err = s.PublishTx(ctx, tx, HookDisabled(hook))
	}
	return hook, true, err
}

// cancelBatch bounds the deliveries one statement of CancelPendingOfHook
// cancels; it looks cancelPasses times at most, cancelRetryWait apart, for
// those being recorded (a recording holds them for milliseconds).
const (
	cancelBatch     = 1000
	cancelPasses    = 25
	cancelRetryWait = 20 * time.Millisecond
)

// CancelPendingOfHook cancels the pending deliveries of a disabled hook, a
// batch per statement, never waiting for a lock: many runs of a busy hook
// may disable it at once, and each would otherwise wait on the deliveries
// the others are recording. It looks again for those it skipped while they
// were being recorded until none is pending, for half a second at most; the
// deliver jobs of any still pending cancel them at their next run.
func (s *Store) CancelPendingOfHook(ctx context.Context, id string) error {
	hook, err := s.GetHook(ctx, id)
	if err != nil || hook.Enabled {
		return err
	}
	reason := nullable("hook disabled: " + hook.DisabledReason)
	q := s.queries(s.pool)
	for pass := range cancelPasses {
		if pass > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cancelRetryWait):
			}
		}
		for {
			n, err := q.DeliveryCancelPendingOfHook(ctx, &dbsqlc.DeliveryCancelPendingOfHookParams{HookID: id, Reason: reason, Max: cancelBatch})
			if err != nil {
				return fmt.Errorf("cancel pending deliveries of hook %s: %w", id, err)
			}
			if n < cancelBatch {
				break
			}
		}
		pending, err := q.DeliveryHookHasPending(ctx, id)
		if err != nil || !pending {
			return wrap(err, "look for pending deliveries of hook %s", id)
		}
	}
	return nil
}

func (s *Store) setHookEnabled(ctx context.Context, tx pgx.Tx, id string, enabled bool, reason string) (*Hook, error) {
	if !isUUID(id) {
		return nil, missing(ErrHookNotFound, id)
	}
	row, err := s.queries(tx).HookSetEnabled(ctx, &dbsqlc.HookSetEnabledParams{
		ID:             id,
		Enabled:        enabled,
		DisabledReason: nullable(reason),
	})
	if err != nil {
		return nil, lookupErr(err, ErrHookNotFound, id, "set hook %s enabled=%t", id, enabled)
	}
	return hookFromRow(row)
}

// RotateHookKey gives the hook a new signing key. The previous key keeps
// signing alongside it for overlap (zero: not at all), so receivers can move to
// the new key without rejecting a delivery.
func (s *Store) RotateHookKey(ctx context.Context, id string, overlap time.Duration) (*Hook, error) {
	if !isUUID(id) {
		return nil, missing(ErrHookNotFound, id)
	}
	if overlap < 0 {
		return nil, invalid("overlap", "%s is negative; give a duration such as 24h, or 0 to stop the old key at once", overlap)
	}
	row, err := s.queries(s.pool).HookRotateKey(ctx, &dbsqlc.HookRotateKeyParams{
		ID:           id,
		SigningKey:   NewSigningKey(),
		OverlapUntil: time.Now().Add(overlap),
	})
	if err != nil {
		return nil, lookupErr(err, ErrHookNotFound, id, "rotate key of hook %s", id)
	}
	return hookFromRow(row)
}

func setIfNotNil[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// validateHook checks a hook's settings and returns its filters without
// duplicates and its headers as JSON.
func validateHook(name, rawURL string, events []string, headers map[string]string, tenantID string) ([]string, []byte, error) {
	// The URL first: a hook's name defaults to its host.
	if err := ValidateHookURL(rawURL); err != nil {
		return nil, nil, err
	}
	if name == "" || len(name) > HookNameMaxLength {
		return nil, nil, invalid("name", "give a name of 1 to %d characters", HookNameMaxLength)
	}
	if len(events) == 0 {
		return nil, nil, invalid("events", "a hook needs at least one event filter, such as User.Created, User.* or *")
	}
	var filters []string
	for _, event := range events {
		if err := ValidateEventFilter(event); err != nil {
			return nil, nil, err
		}
		if !slices.Contains(filters, event) {
			filters = append(filters, event)
		}
	}
	if len(filters) > HookEventsMax {
		return nil, nil, invalid("events", "%d filters; a hook may have at most %d (use a wildcard such as User.*)", len(filters), HookEventsMax)
	}
	if err := ValidateHeaders(headers); err != nil {
		return nil, nil, err
	}
	if len(tenantID) > TenantIDMaxLength {
		return nil, nil, invalid("tenant id", "at most %d characters", TenantIDMaxLength)
	}
	if headers == nil {
		headers = map[string]string{}
	}
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return nil, nil, fmt.Errorf("encode headers: %w", err)
	}
	return filters, headersJSON, nil
}

// ValidateHookURL returns a *ValidationError unless rawURL is an absolute
// http or https URL with a host and no credentials.
func ValidateHookURL(rawURL string) error {
	if len(rawURL) > HookURLMaxLength {
		return invalid("url", "%d characters; at most %d", len(rawURL), HookURLMaxLength)
	}
	u, err := url.Parse(rawURL)
	if err != nil && !strings.Contains(rawURL, "://") {
		// 127.0.0.1:9000/hooks parses as a scheme "127.0.0.1" at best.
		return invalid("url", "%q: the scheme must be http or https, as in https://example.com/hooks", rawURL)
	}
	if err != nil {
		return invalid("url", "%q does not parse: %v", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("url", "%q: the scheme must be http or https, as in https://example.com/hooks", rawURL)
	}
	if u.Hostname() == "" {
		return invalid("url", "%q has no host", rawURL)
	}
	if u.User != nil {
		return invalid("url", "credentials in the URL are not allowed; send them in a custom header such as Authorization")
	}
	if u.Fragment != "" {
		return invalid("url", "%q has a fragment (#…), which is never sent", rawURL)
	}
	return nil
}

// ValidateHeaders returns a *ValidationError unless headers are valid HTTP
// header names and values that do not replace the headers hookrelay sets.
func ValidateHeaders(headers map[string]string) error {
	if len(headers) > HookHeadersMax {
		return invalid("headers", "%d headers; at most %d", len(headers), HookHeadersMax)
	}
	seen := make(map[string]bool, len(headers))
	for name, value := range headers {
		// CGI, WSGI and PHP receivers read webhook_signature (and
		// webhook.signature) as webhook-signature: compare names as they do.
		lower := headerNormalizer.Replace(strings.ToLower(name))
		switch {
		case !isHeaderToken(name):
			return invalid("header", "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
		case seen[lower]:
			return invalid("header", "duplicate header %q (receivers may read names that differ only in -, _ or . as one)", name)
		case slices.Contains(reservedHeaders, lower) || strings.HasPrefix(lower, "proxy-"):
			return invalid("header", "%q is set by hookrelay or by the connection and cannot be replaced", name)
		case strings.ContainsAny(value, "\r\n\x00"):
			return invalid("header", "the value of %q contains a line break or NUL", name)
		case len(value) > HookHeaderValueMaxLen:
			return invalid("header", "the value of %q is %d bytes; at most %d", name, len(value), HookHeaderValueMaxLen)
		}
		seen[lower] = true
	}
	return nil
}

var headerNormalizer = strings.NewReplacer("_", "-", ".", "-") //nolint:gochecknoglobals

func isHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}

func hookFromRow(row *dbsqlc.Hook) (*Hook, error) {
	var headers map[string]string
	if err := json.Unmarshal(row.Headers, &headers); err != nil {
		return nil, fmt.Errorf("decode headers of hook %s: %w", row.ID, err)
	}
	return &Hook{
		ID:                   row.ID,
		Name:                 row.Name,
		URL:                  row.Url,
		Events:               row.Events,
		Headers:              headers,
		TenantID:             deref(row.TenantID),
		RateLimit:            formatRate(row.RateCount, row.RatePeriodS),
		RateBurst:            int(row.RateBurst),
		Ordering:             row.Ordering,
		Filter:               deref(row.Filter),
		Enabled:              row.Enabled,
		DisabledReason:       deref(row.DisabledReason),
		SigningKey:           row.SigningKey,
		PreviousSigningKey:   deref(row.PreviousSigningKey),
		PreviousKeyExpiresAt: row.PreviousKeyExpiresAt,
		KeyRotatedAt:         row.KeyRotatedAt,
		FailingSince:         row.FailingSince,
		CreatedAt:            row.CreatedAt,
		UpdatedAt:            row.UpdatedAt,
	}, nil
}

// DisabledByOperator is the disabled reason of a hook disabled by hand.
const DisabledByOperator = "disabled by an operator"

// HookStats are a hook's numbers over the last 24 hours.
type HookStats struct {
	HookID    string `json:"hookId"`
	Requests  int64  `json:"requests"`
	Successes int64  `json:"successes"`
}

// HookStats counts the hook's requests and successful ones over the last 24
// hours.
func (s *Store) HookStats(ctx context.Context, id string) (*HookStats, error) {
	if _, err := s.GetHook(ctx, id); err != nil {
		return nil, err
	}
	stats, err := s.HookStatsMany(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	return stats[id], nil
}

// HookStatsMany is HookStats of several hooks in one query, by hook ID; an
// unknown ID counts nothing.
func (s *Store) HookStatsMany(ctx context.Context, ids []string) (map[string]*HookStats, error) {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !isUUID(id) })
	rows, err := s.queries(s.pool).HookStatsMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("count requests of %d hooks: %w", len(ids), err)
	}
	stats := make(map[string]*HookStats, len(rows))
	for _, row := range rows {
		stats[row.HookID] = &HookStats{HookID: row.HookID, Requests: row.Requests, Successes: row.Successes}
	}
	return stats, nil
}

// filterSample is the event a filter is checked on when it is set: every
// field the fan-out gives it, empty.
const filterSample = `{"event": "User.Created", "tenantId": "t", "data": {}, "context": {}}`

// checkFilter refuses a filter that the database cannot parse, that is no
// predicate (it must yield one boolean, or unknown), or that is too long.
func (s *Store) checkFilter(ctx context.Context, filter string) error {
	if filter == "" {
		return nil
	}
	if len(filter) > HookFilterMaxLength {
		return invalid("filter", "%d characters, at most %d", len(filter), HookFilterMaxLength)
	}
	_, err := s.queries(s.pool).HookFilterCheck(ctx, &dbsqlc.HookFilterCheckParams{Sample: []byte(filterSample), Filter: filter})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return invalid("filter", "%q: %s; write a SQL/JSON path predicate on the event, such as $.data.organizationId == \"org_1\" or $.event starts with \"User.\"", filter, pgErr.Message)
	}
	return wrap(err, "check filter")
}

// FilterPasses tells whether the event passes filter, as the fan-out
// decides it: "" passes every event.
func (s *Store) FilterPasses(ctx context.Context, filter, eventID string) (bool, error) {
	if filter == "" {
		return true, nil
	}
	passes, err := s.queries(s.pool).HookFilterMatch(ctx, &dbsqlc.HookFilterMatchParams{Filter: filter, EventID: eventID})
	return passes, wrap(err, "match event %s with a filter", eventID)
}
