package outbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// ProcessLock says that a process lives: a session-level advisory lock on a
// connection of its own, which Postgres releases the moment the connection
// closes (the process died, or lost the connection). Its key is drawn at
// random at each take and registered with the connection's backend pid: the
// process lives while that backend holds that key, whatever other roles do
// with the key (see schema/011_processes.up.sql and 015_borrowed_locks).
type ProcessLock struct {
	conn *pgx.Conn
}

// How a process watches its lock's connection: it waits on the socket, so a
// connection the server closes (a terminated backend, a restart) is noticed
// at once, and its TCP keepalive probes an idle server after
// clientKeepalive.Idle and gives up after Count probes Interval apart, so a
// connection cut off is noticed within 4 s, with no query. The server, told
// to probe an idle peer after serverKeepaliveIdle seconds and give up after
// serverKeepaliveProbes probes a second apart, releases the lock of a
// process cut off from it after 8 s at the soonest: a process always knows
// it lost its lock before anyone else can take it.
var clientKeepalive = net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 2} //nolint:gochecknoglobals

const (
	serverKeepaliveIdle   = 5
	serverKeepaliveProbes = 3
)

// TakeProcessLock opens a connection of its own, takes a lock for the
// process whose River client has ID clientID, and registers the process.
// It fails if another process with that client ID holds its lock.
func (s *Store) TakeProcessLock(ctx context.Context, clientID string) (*ProcessLock, error) {
	config := s.pool.Config().ConnConfig.Copy()
	config.RuntimeParams["application_name"] = "hookrelay process lock"
	config.RuntimeParams["tcp_keepalives_idle"] = fmt.Sprint(serverKeepaliveIdle)
	config.RuntimeParams["tcp_keepalives_interval"] = "1"
	config.RuntimeParams["tcp_keepalives_count"] = fmt.Sprint(serverKeepaliveProbes)
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAliveConfig: clientKeepalive}
	config.DialFunc = dialer.DialContext
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("connect the process lock: %w", err)
	}
	key := rand.Int64() //nolint:gosec // unguessable enough: a role that reads it in pg_locks gains nothing
	lock, err := s.queries(conn).ProcessLockTake(ctx, key)
	if err == nil && !lock.Taken {
		err = errors.New("a session holds the key just drawn") //nolint:err113 // a 1 in 2⁶³ chance, or a bug
	}
	if err == nil {
		_, err = s.queries(s.pool).ProcessRegister(ctx, &dbsqlc.ProcessRegisterParams{ClientID: clientID, LockKey: key, LockPid: &lock.Pid})
		if errors.Is(err, pgx.ErrNoRows) {
			err = fmt.Errorf("another process holds the lock of River client %q: give each process a client ID of its own", clientID) //nolint:err113
		}
	}
	if err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take the process lock: %w", err)
	}
	return &ProcessLock{conn: conn}, nil
}

// Watch returns nil when ctx ends, or an error as soon as the lock's
// connection fails: from then on, other processes may take the process's
// work. Close the lock either way.
func (l *ProcessLock) Watch(ctx context.Context) error {
	for {
		err := l.conn.PgConn().WaitForNotification(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the process lock's connection failed: %w", err)
		}
	}
}

// Close releases the lock by closing its connection.
func (l *ProcessLock) Close(ctx context.Context) {
	_ = l.conn.Close(ctx)
}

// DeadProcesses looks at the lock of every registered process but self and
// returns those whose backend did not hold it at this look and at one at least
// confirmAfter earlier, by any process: they are dead, since the time it
// maps each to, when a look first found it gone. It notes the others found
// gone, for a later look to confirm.
func (s *Store) DeadProcesses(ctx context.Context, self string, confirmAfter time.Duration) (map[string]time.Time, error) {
	rows, err := s.queries(s.pool).ProcessLookGone(ctx, &dbsqlc.ProcessLookGoneParams{Self: self, ConfirmAfterS: confirmAfter.Seconds()})
	if err != nil {
		return nil, wrap(err, "look for dead processes")
	}
	dead := make(map[string]time.Time, len(rows))
	for _, row := range rows {
		dead[row.ID] = row.GoneSince
	}
	return dead, nil
}

// ProcessDead reports whether the process with River client ID clientID is
// dead, as DeadProcesses found it: gone at a look and at one at least
// confirmAfter earlier, or forgotten since. One found gone at a single look
// may have merely lost its lock's connection and be cancelling its work.
func (s *Store) ProcessDead(ctx context.Context, clientID string, confirmAfter time.Duration) (bool, error) {
	dead, err := s.queries(s.pool).ProcessDead(ctx, &dbsqlc.ProcessDeadParams{ClientID: clientID, ConfirmAfterS: confirmAfter.Seconds()})
	return dead, wrap(err, "look at the lock of process %s", clientID)
}

// ForgetDeadProcesses removes from the registry those of the dead processes
// clientIDs first found gone at least after ago.
func (s *Store) ForgetDeadProcesses(ctx context.Context, clientIDs []string, after time.Duration) error {
	err := s.queries(s.pool).ProcessForgetDead(ctx, &dbsqlc.ProcessForgetDeadParams{ClientIds: clientIDs, ForgetAfterS: after.Seconds()})
	return wrap(err, "forget %d dead processes", len(clientIDs))
}

// ForgetProcesses removes processes from the registry: stopped ones.
func (s *Store) ForgetProcesses(ctx context.Context, clientIDs []string) error {
	return wrap(s.queries(s.pool).ProcessDelete(ctx, clientIDs), "forget %d processes", len(clientIDs))
}
