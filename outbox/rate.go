package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// Bounds of a hook's rate limit.
const (
	RateCountMax = 100000
	RateBurstMax = 100000
)

// ParseRate reads a rate limit written N/s or N/m (also N/sec, N/min): at
// most N requests a second or a minute. The empty string is no limit.
func ParseRate(rate string) (count int, period time.Duration, err error) {
	if rate == "" {
		return 0, 0, nil
	}
	n, per, ok := strings.Cut(strings.ReplaceAll(rate, " ", ""), "/")
	count, convErr := strconv.Atoi(n)
	switch per {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	default:
		ok = false
	}
	if !ok || convErr != nil || count < 1 || count > RateCountMax {
		return 0, 0, invalid("rate", "%q: write it as N/s or N/m, N from 1 to %d, such as 50/s or 600/m", rate, RateCountMax)
	}
	return count, period, nil
}

// formatRate writes a rate limit as ParseRate reads it.
func formatRate(count, periodS *int32) string {
	if count == nil || periodS == nil {
		return ""
	}
	unit := "s"
	if *periodS == 60 {
		unit = "m"
	}
	return fmt.Sprintf("%d/%s", *count, unit)
}

// rateColumns are a rate limit's columns, validated.
func rateColumns(rate string, burst int) (count, periodS *int32, burst32 int32, err error) {
	n, period, err := ParseRate(rate)
	if err != nil {
		return nil, nil, 0, err
	}
	if burst < 0 || burst > RateBurstMax {
		return nil, nil, 0, invalid("burst", "%d: give 0 to %d more requests than the rate allows at once", burst, RateBurstMax)
	}
	if n == 0 {
		if burst != 0 {
			return nil, nil, 0, invalid("burst", "a burst needs a rate limit")
		}
		return nil, nil, 0, nil
	}
	c, p := int32(n), int32(period/time.Second) //nolint:gosec // bounded above
	return &c, &p, int32(burst), nil            //nolint:gosec // bounded above
}

// Reservation is what a run may send to a hook with a rate limit: Reserved
// requests, the i-th due at At + Lead + i × Interval (at once when that is
// past); a later reservation gets its first request at At + Next. At is
// the reservation's now (see RateReserve) as this process's clock sees it,
// at the latest.
type Reservation struct {
	Reserved             int
	At                   time.Time
	Interval, Lead, Next time.Duration
}

// Due is when the i-th request of r is due.
func (r *Reservation) Due(i int) time.Time {
	return r.At.Add(r.Lead + time.Duration(i)*r.Interval)
}

// ReserveRate reserves up to n requests to the hook within horizon from
// now, at its rate, for every process that serves the database: one
// statement under the lock of the hook's rate state. It returns nil when the
// hook has no rate limit.
func (s *Store) ReserveRate(ctx context.Context, hookID string, n int, horizon time.Duration) (*Reservation, error) {
	q := s.queries(s.pool)
	params := &dbsqlc.RateReserveParams{HookID: hookID, N: int32(min(n, RateCountMax)), HorizonS: horizon.Seconds()} //nolint:gosec // bounded
	row, err := q.RateReserve(ctx, params)
	if errors.Is(err, pgx.ErrNoRows) {
		// The hook's first reservation, or it has no limit.
		if err = q.RateInit(ctx, hookID); err == nil {
			row, err = q.RateReserve(ctx, params)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil //nolint:nilnil // no limit
	}
	if err != nil {
		return nil, fmt.Errorf("reserve requests at the rate of hook %s: %w", hookID, err)
	}
	// The reservation's now came at least the statement's time since
	// before its answer: counted from the answer less that time, a request
	// is never early, and late by the answer's way back only.
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	at := time.Now().Add(-seconds(row.ExecS))
	return &Reservation{Reserved: int(row.Reserved), At: at, Interval: seconds(row.IntervalS), Lead: seconds(row.LeadS), Next: seconds(row.NextS)}, nil
}
