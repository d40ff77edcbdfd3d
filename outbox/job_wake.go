package outbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// Deliver jobs that hold back deliveries for their predecessors (hooks
// ordered by subject) are woken by the run that makes a predecessor final.
// One running in another process, River cannot wake: WakeJobsTx tells every
// process listening (ListenJobWakes), and the one running it runs it again.

// wakeMaxIDs bounds the job IDs of one notification, well within its 8,000
// bytes.
const wakeMaxIDs = 200

// WakeJobsTx tells every process listening, once tx commits, that the deliver
// jobs ids may send deliveries they hold back.
func (s *Store) WakeJobsTx(ctx context.Context, tx pgx.Tx, ids []int64) error {
	for start := 0; start < len(ids); start += wakeMaxIDs {
		var payload strings.Builder
		for _, id := range ids[start:min(start+wakeMaxIDs, len(ids))] {
			if payload.Len() > 0 {
				payload.WriteByte(' ')
			}
			payload.WriteString(strconv.FormatInt(id, 10))
		}
		if err := s.queries(tx).DeliveryJobWake(ctx, payload.String()); err != nil {
			return fmt.Errorf("wake %d deliver jobs: %w", len(ids), err)
		}
	}
	return nil
}

// JobWakeListener is a connection of its own on which a process hears the
// wakes of deliver jobs (WakeJobsTx).
type JobWakeListener struct {
	conn *pgx.Conn
}

// ListenJobWakes opens a listener. Close it when done.
func (s *Store) ListenJobWakes(ctx context.Context) (*JobWakeListener, error) {
	conn, err := s.listenConn(ctx, "deliver job wakes", (*dbsqlc.Queries).DeliveryJobWakeListen)
	if err != nil {
		return nil, err
	}
	return &JobWakeListener{conn: conn}, nil
}

// Wait returns the IDs of the jobs of the next wake, or an error: ctx's, or
// any other, which means the listener is broken. Any role may notify, so a
// wake is a hint: a woken run looks again, and words that are not job IDs
// are skipped.
func (l *JobWakeListener) Wait(ctx context.Context) ([]int64, error) {
	n, err := l.conn.WaitForNotification(ctx)
	if err != nil {
		return nil, err
	}
	words := strings.Fields(n.Payload)
	ids := make([]int64, 0, min(len(words), wakeMaxIDs))
	for _, word := range words[:min(len(words), wakeMaxIDs)] {
		if id, err := strconv.ParseInt(word, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Close closes the listener's connection.
func (l *JobWakeListener) Close() { closeConn(l.conn) }
