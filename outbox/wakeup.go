package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// OutboxListener is a connection of its own that hears when events are
// published while a poller sleeps (see Store.SleepOutbox).
type OutboxListener struct {
	conn *pgx.Conn
}

// ListenOutbox opens a listener. Close it when done.
func (s *Store) ListenOutbox(ctx context.Context) (*OutboxListener, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect outbox listener: %w", err)
	}
	if err := s.queries(conn).OutboxListen(ctx); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listen for published events: %w", err)
	}
	return &OutboxListener{conn: conn}, nil
}

// Wait returns nil once an event was published since the last Wait, or
// ctx's error. Any other error means the listener is broken: close it.
func (l *OutboxListener) Wait(ctx context.Context) error {
	_, err := l.conn.WaitForNotification(ctx)
	if ctx.Err() != nil && !l.conn.IsClosed() {
		return ctx.Err()
	}
	return err
}

// Drain discards the notifications received since the last Wait, so that a
// poller falling asleep is woken by new events only.
func (l *OutboxListener) Drain(ctx context.Context) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, time.Millisecond)
		err := l.Wait(waitCtx)
		cancel()
		switch {
		case err == nil:
			continue
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return nil
		}
		return err
	}
}

// Close closes the listener's connection.
func (l *OutboxListener) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}

// SleepOutbox says that the poller pollerID sleeps on an OutboxListener for
// the next d: until then, or until WakeOutbox, every committed event sends a
// notification. Look for events once more after it returns, for those
// committed while it ran.
func (s *Store) SleepOutbox(ctx context.Context, pollerID string, d time.Duration) error {
	err := s.queries(s.pool).OutboxSleep(ctx, &dbsqlc.OutboxSleepParams{PollerID: pollerID, Seconds: d.Seconds()})
	return wrap(err, "mark the outbox poller asleep")
}

// WakeOutbox says that the poller pollerID is awake, or stopped.
func (s *Store) WakeOutbox(ctx context.Context, pollerID string) error {
	return wrap(s.queries(s.pool).OutboxWake(ctx, pollerID), "mark the outbox poller awake")
}
