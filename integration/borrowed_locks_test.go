package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// processLock returns the key and backend pid of a serve process's lock, as
// any role reads them in pg_locks.
func processLock(t *testing.T, bundle *storeBundle, clientID string) (key int64, pid int32) {
	t.Helper()
	require.NoError(t, bundle.pool.QueryRow(context.Background(), `SELECT lock_key, lock_pid FROM hookrelay.processes WHERE client_id = $1`,
		clientID).Scan(&key, &pid))
	return key, pid
}

// newProcess waits for a process to register that is not one of known, and
// returns its River client ID.
func newProcess(t *testing.T, bundle *storeBundle, known ...string) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		err := bundle.pool.QueryRow(context.Background(), "SELECT client_id FROM hookrelay.processes WHERE client_id <> ALL($1)", append([]string{}, known...)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return false
		}
		require.NoError(t, err)
		return true
	}, 10*time.Second, 10*time.Millisecond)
	return id
}

// TestProcessLockCannotBeBorrowed: a role with a publisher's grants only
// reads a serve process's lock key in pg_locks and queues for it. When the
// lock's backend is terminated, the role gets the key, but the process takes
// a fresh lock within seconds, says so on /readyz meanwhile, and works on.
// When a process dies while the role waits for its key, the survivor still
// finds it dead.
func TestProcessLockCannotBeBorrowed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	rights := setupRightsOn(t, bundle)
	rec := newReceiver(t, nil)
	hook := bundle.createHook(t, rec.URL, "*")
	url := bundle.pool.Config().ConnString()
	first := startServe(t, url)
	firstID := newProcess(t, bundle)
	second := startServe(t, url)
	secondID := newProcess(t, bundle, firstID)

	// The role queues for the first process's key, read in pg_locks as any
	// role may.
	var key int64
	require.NoError(t, rights.writerConn.QueryRow(ctx, `SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l
		JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND a.application_name = 'hookrelay process lock' AND l.pid = $1`,
		func() int32 { _, pid := processLock(t, bundle, firstID); return pid }()).Scan(&key))
	borrowed := make(chan error, 1)
	go func() {
		_, err := rights.writerConn.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
		borrowed <- err
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)`).Scan(&waiting))
		return waiting
	}, 10*time.Second, 10*time.Millisecond)

	// The lock's backend ends: the role holds the key.
	_, oldPID := processLock(t, bundle, firstID)
	_, err := bundle.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", oldPID)
	require.NoError(t, err)
	require.NoError(t, <-borrowed)
	var readyzDown bool
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + first.addr + "/readyz")
		require.NoError(t, err)
		_ = resp.Body.Close()
		readyzDown = readyzDown || resp.StatusCode == http.StatusServiceUnavailable
		newKey, newPID := processLock(t, bundle, firstID)
		return resp.StatusCode == http.StatusOK && newPID != oldPID && newKey != key
	}, 10*time.Second, 10*time.Millisecond, "the process takes a fresh lock")
	require.True(t, readyzDown, "/readyz said the process did not work meanwhile")

	// Both processes work: the second is stopped, and the first delivers.
	second.kill()
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)

	// A process dies while the role waits for its key: it is found dead.
	second.start()
	secondID = newProcess(t, bundle, firstID, secondID)
	key, _ = processLock(t, bundle, secondID)
	go func() {
		_, err := rights.writerConn.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
		borrowed <- err
	}()
	require.NoError(t, second.cmd.Process.Signal(syscall.SIGKILL))
	<-second.exited
	require.NoError(t, <-borrowed, "the role holds the dead process's key")
	require.Eventually(t, func() bool {
		var gone bool
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT coalesce((SELECT gone_since IS NOT NULL FROM hookrelay.processes WHERE client_id = $1), true)`,
			secondID).Scan(&gone))
		return gone
	}, 10*time.Second, 10*time.Millisecond, "the survivor found the dead process gone")
	second.cmd = nil
}

// TestDoorbellCannotBeBorrowed: a role with a publisher's grants only holds
// the outbox doorbell. Publishing, its own and others', from SQL and Go,
// sends no notification, since no poller sleeps; serve's poller polls instead
// of sleeping, and delivers at once.
func TestDoorbellCannotBeBorrowed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupPipeline(t, nil)
	rights := setupRightsOn(t, bundle.storeBundle)
	rec := newReceiver(t, nil)
	hook := bundle.createHook(t, rec.URL, "*")
	waitAsleep(t, bundle.storeBundle)
	// The role waits for the doorbell until the poller wakes, and holds it.
	borrowed := make(chan error, 1)
	go func() {
		_, err := rights.writerConn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('hookrelay.outbox'))")
		borrowed <- err
	}()
	_, err := bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	require.NoError(t, <-borrowed)
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)

	listener := listenOutbox(t, bundle.storeBundle)
	_, err = rights.writerConn.Exec(ctx, "SELECT hookrelay.publish('User.Created', '{}')")
	require.NoError(t, err)
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	_, err = bundle.store.PublishSQL(ctx, "User.Created", nil, nil, "", "")
	require.NoError(t, err)
	require.False(t, notified(listener, 200*time.Millisecond), "no poller sleeps: no notification")
	bundle.waitDeliveryWithin(t, hook.ID, outbox.DeliverySucceeded, 4, 5*time.Second)

	// Well after the poller would have gone to sleep, events still go out
	// at once.
	time.Sleep(3 * jobs.PollerSleepAfter)
	published := time.Now()
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	bundle.waitDeliveryWithin(t, hook.ID, outbox.DeliverySucceeded, 5, 5*time.Second)
	t.Logf("delivered %s after publishing, the doorbell held by a publisher", time.Since(published))
}

// TestServeAsItsOwnRole: migrate, as the installer, creates serve's role and
// grants it what serve needs; serve, as that role, delivers, and the role
// can neither change hookrelay's schema nor reach the rest of the database.
// The password is stored as the SCRAM verifier migrate made, with which the
// role logs in.
func TestServeAsItsOwnRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	installer := bundle.pool.Config().ConnString()
	role := fmt.Sprintf("serve_%d", time.Now().UnixNano()%1e12)
	t.Cleanup(func() {
		_, _ = bundle.pool.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s; DROP ROLE IF EXISTS %[1]s", role))
	})
	_, err := bundle.pool.Exec(ctx, "CREATE TABLE public.auth_secrets (secret text); INSERT INTO public.auth_secrets VALUES ('s3cret')")
	require.NoError(t, err)

	res := runCLIWith(t, []string{"DATABASE_URL=" + installer}, "", "migrate", "--serve-role", role)
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "give the password it should log in with (HOOKRELAY_SERVE_PASSWORD)")
	const password = "serve-pass'word"
	res = runCLIWith(t, []string{"DATABASE_URL=" + installer, "HOOKRELAY_SERVE_PASSWORD=" + password}, "", "migrate", "--serve-role", role)
	require.Zero(t, res.code, res.stderr)
	require.Contains(t, res.stdout, "role "+role+" may serve")
	var stored string
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored))
	require.True(t, strings.HasPrefix(stored, "SCRAM-SHA-256$4096:"), stored)
	// Again, as after an upgrade: the role is kept, its password too.
	res = runCLIWith(t, []string{"DATABASE_URL=" + installer}, "", "migrate", "--serve-role", role)
	require.Zero(t, res.code, res.stderr)

	config := bundle.pool.Config().ConnConfig.Copy()
	config.User, config.Password = role, password
	serveURL := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", role, neturl.QueryEscape(password), config.Host, config.Port, config.Database)
	conn, err := pgx.ConnectConfig(ctx, config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	for _, statement := range []string{
		"CREATE TABLE hookrelay.mine (x int)",
		"ALTER TABLE hookrelay.events ADD COLUMN x int",
		"DROP TABLE hookrelay.hooks",
		"SELECT * FROM public.auth_secrets",
		"CREATE ROLE someone",
	} {
		_, err := conn.Exec(ctx, statement)
		require.Error(t, err, statement)
	}

	rec := newReceiver(t, nil)
	hook := bundle.createHook(t, rec.URL, "*")
	startServe(t, serveURL)
	_, err = bundle.store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.NoError(t, err)
	bundle.waitDelivery(t, hook.ID, outbox.DeliverySucceeded, 1)
}
