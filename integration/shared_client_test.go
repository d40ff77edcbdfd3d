package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// do sends an authorized request to the process and decodes a JSON answer.
func (p *childProcess) do(method, path string, body, answer any) error {
	var reader *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(b)
	} else {
		reader = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, "http://"+p.addr+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if answer == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(answer)
}

// riverUIKinds returns the kinds of the jobs River's UI lists as completed.
func (p *childProcess) riverUIKinds(t *testing.T, kinds ...string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	for _, kind := range kinds {
		var list struct {
			Data []struct {
				Kind string `json:"kind"`
			} `json:"data"`
		}
		require.NoError(t, p.do(http.MethodGet, "/riverui/api/jobs?state=completed&limit=5&kinds="+kind, nil, &list))
		for _, job := range list.Data {
			found[job.Kind] = true
		}
	}
	return found
}

// TestSharedRiverClient runs hookrelay inside an application's own River
// client (examples/riverapp): River's tables are the application's, in
// public; its jobs and hookrelay's run side by side; a SIGKILL while both
// run loses nothing; River's UI lists both kinds, served by the application
// and by `hookrelay serve --river-schema public` beside it.
func TestSharedRiverClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pg.NewEmptyDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	rec := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		time.Sleep(20 * time.Millisecond) // keeps deliveries in flight
		w.WriteHeader(http.StatusNoContent)
	})
	env := []string{"DATABASE_URL=" + url, "HOOKRELAY_ADMIN_TOKEN=" + adminToken, "HOOKRELAY_ALLOW_CIDRS=127.0.0.1"}
	app := startProcess(t, buildBinary(t, "github.com/hookrelay/hookrelay/examples/riverapp"), env)

	var tables struct{ Hookrelay, Public bool }
	require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('hookrelay.river_job') IS NOT NULL, to_regclass('public.river_job') IS NOT NULL").Scan(&tables.Hookrelay, &tables.Public))
	require.Equal(t, struct{ Hookrelay, Public bool }{false, true}, tables, "River's tables are the application's only")
	migrate := runCLI(t, url, "migrate", "--river-schema", "public")
	require.Equal(t, 0, migrate.code, migrate.stderr)
	require.Contains(t, migrate.stdout, "River's migrations skipped: River's tables are in schema public")

	var hook struct{ ID string }
	require.NoError(t, app.do(http.MethodPost, "/api/hooks", map[string]any{"url": rec.URL, "events": []string{"User.*"}}, &hook))

	// Signups, one by one as users come; the application is killed ten
	// times while they and their deliveries and welcome jobs are under way,
	// and started again at once, as a supervisor would. A signup that fails
	// (the application is down) rolled back and is made again.
	const signups, kills = 300, 10
	var signing sync.WaitGroup
	signing.Go(func() {
		for done := 0; done < signups; {
			if err := app.do(http.MethodPost, fmt.Sprintf("/signup?username=user%d", done), nil, nil); err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			done++
		}
	})
	stranded := map[int64]bool{}
	var killed []*crashKill
	var serve *childProcess
	for i := range kills {
		rec.waitFor(t, time.Minute, func(r []received) bool { return len(r) >= 20*(i+1) })
		inFlight := rec.inFlight()
		app.kill()
		killed = append(killed, &crashKill{at: time.Now(), held: heldDeliveries(t, pool, "public", stranded, inFlight)})
		if i == 0 {
			var emailed, running int
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM app_emails").Scan(&emailed))
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM public.river_job WHERE state = 'running'").Scan(&running))
			t.Logf("killed with %d deliveries received, %d welcome emails sent, %d jobs running", len(rec.all()), emailed, running)
		}
		app.start()
		if i == 0 {
			// serve works on the application's River tables beside it.
			serve = startServe(t, url, "HOOKRELAY_RIVER_SCHEMA=public")
		}
	}
	killedAt := killed[len(killed)-1].at
	signing.Wait()

	// Nothing lost: every user that exists was delivered and welcomed.
	var users []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rows, err := pool.Query(ctx, `SELECT u.id::text FROM app_users u
			WHERE NOT EXISTS (SELECT 1 FROM app_emails e WHERE e.user_id = u.id::text)`)
		require.NoError(t, err)
		unwelcomed, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		rows, err = pool.Query(ctx, "SELECT id::text FROM app_users ORDER BY id")
		require.NoError(t, err)
		users, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		delivered := map[string]bool{}
		for _, r := range rec.all() {
			var body struct{ Data struct{ ID string } }
			require.NoError(t, json.Unmarshal(r.Body, &body))
			delivered[body.Data.ID] = true
		}
		undelivered := 0
		for _, id := range users {
			if !delivered[id] {
				undelivered++
			}
		}
		if len(unwelcomed) == 0 && undelivered == 0 {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(app.logPath)
			t.Fatalf("%d of %d users not delivered, %d not welcomed, %s after the last kill\n%s",
				undelivered, len(users), len(unwelcomed), time.Since(killedAt), tail(string(out), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A signup whose answer the kill cut off may have committed: it is made
	// again, and both users exist.
	require.GreaterOrEqual(t, len(users), signups)
	t.Logf("all %d users delivered and welcomed %s after the last kill", len(users), time.Since(killedAt).Round(time.Second))
	// Every delivery is recorded as succeeded: the killed process's jobs
	// were rescued and run again.
	var unfinished, ticks int
	require.Eventually(t, func() bool {
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.deliveries WHERE status <> 'succeeded'").Scan(&unfinished))
		return unfinished == 0
	}, time.Minute, 100*time.Millisecond)
	t.Logf("every delivery recorded %s after the last kill", time.Since(killedAt).Round(time.Second))
	worst, held := recovery(t, pool, killed, rec.all())
	t.Logf("%d kills; %d deliveries held by killed processes, all sent again within %.1f s of their kill", len(killed), held, worst.Seconds())
	require.LessOrEqual(t, worst, 10*time.Second, "what a killed process held is sent within 10 s (invariant 7)")
	require.Eventually(t, func() bool {
		return pool.QueryRow(ctx, "SELECT count(*) FROM app_ticks").Scan(&ticks) == nil && ticks > 0
	}, time.Minute, 100*time.Millisecond, "the application's periodic job runs")

	for _, p := range []*childProcess{app, serve} {
		want := map[string]bool{"app_welcome_email": true, "hookrelay_deliver": true, "hookrelay_fanout": true, "app_tick": true}
		var kinds map[string]bool
		require.Eventually(t, func() bool {
			kinds = p.riverUIKinds(t, "app_welcome_email", "hookrelay_deliver", "hookrelay_fanout", "app_tick")
			return len(kinds) == len(want)
		}, time.Minute, 100*time.Millisecond, "River's UI lists both kinds of jobs: %v (%s)", kinds, p.binary)
		require.Equal(t, want, kinds, p.binary)
	}
	var retention int
	require.Eventually(t, func() bool {
		return pool.QueryRow(ctx, "SELECT count(*) FROM public.river_job WHERE kind = 'hookrelay_retention'").Scan(&retention) == nil && retention > 0
	}, time.Minute, 100*time.Millisecond, "hookrelay's periodic jobs run on the application's client")
}
