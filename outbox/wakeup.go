package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// OutboxListener is a connection of its own on which an idle poller sleeps
// until an event is published. While it holds the outbox doorbell (an
// advisory lock) and is registered as a sleeper, every publish sends it a
// notification; a poller that dies drops the doorbell with its connection.
// See schema/003_publish.up.sql and 015_borrowed_locks.up.sql.
type OutboxListener struct {
	conn    *pgx.Conn
	queries *dbsqlc.Queries
	holding bool
}

// ListenOutbox opens a listener. Close it when done.
func (s *Store) ListenOutbox(ctx context.Context) (*OutboxListener, error) {
	conn, err := s.listenConn(ctx, "published events", (*dbsqlc.Queries).OutboxListen)
	if err != nil {
		return nil, err
	}
	return &OutboxListener{conn: conn, queries: s.queries(conn)}, nil
}

// listenConn opens a connection of a listener's own and has it listen, by
// listen, for what.
func (s *Store) listenConn(ctx context.Context, what string, listen func(*dbsqlc.Queries, context.Context) error) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect a listener for %s: %w", what, err)
	}
	if err := listen(s.queries(conn), ctx); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen for %s: %w", what, err)
	}
	return conn, nil
}

// closeConn closes a listener's connection.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// Doorbell takes the doorbell unless held already, and reports whether a
// notification will wake this listener for every event published from now
// on: true when it holds the doorbell or another sleeping poller does (every
// listener hears every notification); false while a publishing transaction
// is in flight, or a session that is no sleeper holds the doorbell, in which
// case the poller should stay awake.
func (l *OutboxListener) Doorbell(ctx context.Context) (bool, error) {
	if l.holding {
		return true, nil
	}
	// Registered first: a publish that finds the doorbell taken notifies.
	if err := l.queries.OutboxSleeperRegister(ctx); err != nil {
		return false, fmt.Errorf("register as a sleeping poller: %w", err)
	}
	taken, err := l.queries.OutboxDoorbellTake(ctx)
	if err != nil {
		return false, fmt.Errorf("take the outbox doorbell: %w", err)
	}
	if taken {
		l.holding = true
		return true, nil
	}
	if err := l.queries.OutboxSleeperUnregister(ctx); err != nil {
		return false, fmt.Errorf("unregister as a sleeping poller: %w", err)
	}
	sleeper, err := l.queries.OutboxDoorbellHeldBySleeper(ctx)
	return sleeper, wrap(err, "look for the outbox doorbell's holder")
}

// ReleaseDoorbell lets go of the doorbell, if held: the poller is awake.
func (l *OutboxListener) ReleaseDoorbell(ctx context.Context) error {
	if !l.holding {
		return nil
	}
	l.holding = false
	if err := l.queries.OutboxDoorbellRelease(ctx); err != nil {
		return fmt.Errorf("release the outbox doorbell: %w", err)
	}
	return wrap(l.queries.OutboxSleeperUnregister(ctx), "unregister as a sleeping poller")
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

// Close closes the listener's connection, which drops the doorbell.
func (l *OutboxListener) Close() { closeConn(l.conn) }
