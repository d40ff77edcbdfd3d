package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// listenOutbox opens the test's own listener on the outbox channel.
func listenOutbox(t *testing.T, bundle *storeBundle) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, bundle.pool.Config().ConnConfig.Copy())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `LISTEN "hookrelay.outbox"`)
	require.NoError(t, err)
	return conn
}

// notified reports whether a notification arrives within wait.
func notified(conn *pgx.Conn, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := conn.WaitForNotification(ctx)
	return err == nil
}

// waitAsleep waits until a poller holds the outbox doorbell: it sleeps.
func waitAsleep(t *testing.T, bundle *storeBundle) {
	t.Helper()
	require.Eventually(t, func() bool {
		var asleep bool
		require.NoError(t, bundle.pool.QueryRow(context.Background(), `SELECT EXISTS (
			SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ExclusiveLock' AND granted
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND objid::bigint = hashtext('hookrelay.outbox')::bigint & 4294967295)`).Scan(&asleep))
		return asleep
	}, 10*jobs.PollerSleepAfter, 10*time.Millisecond)
}

// TestIdlePollerWakesOnPublish: an idle poller sleeps, and the first event
// published after a quiet spell, from Go or SQL, rings its doorbell.
func TestIdlePollerWakesOnPublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rec := newReceiver(t, nil)
	bundle.createHook(t, rec.URL, "*")
	listener := listenOutbox(t, bundle.storeBundle)

	for i, publish := range []func() error{
		func() error { _, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"}); return err },
		func() error { _, err := bundle.store.PublishSQL(ctx, "User.Created", nil, nil, "", ""); return err },
	} {
		waitAsleep(t, bundle.storeBundle)
		for notified(listener, 0) { // drop what earlier publishes sent
		}
		require.NoError(t, publish())
		require.True(t, notified(listener, 5*time.Second), "publish %d rang the doorbell", i)
		rec.waitFor(t, 20*time.Second, func(r []received) bool { return len(r) == i+1 })
	}
}

// TestPublishWithoutSleeperSendsNoNotification: with no poller asleep, as
// under load, publishing sends no NOTIFY, whose commit lock would serialise
// publishing transactions.
func TestPublishWithoutSleeperSendsNoNotification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	listener := listenOutbox(t, bundle)
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	_, err = bundle.store.PublishSQL(ctx, "User.Created", nil, nil, "", "")
	require.NoError(t, err)
	require.False(t, notified(listener, 200*time.Millisecond))
}
