package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/receiver"
	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
)

// The phases measure with SQL of their own (schemas, sizes, a stand-in
// identity table): measurement, not hookrelay's runtime.

type noopArgs struct{}

func (noopArgs) Kind() string { return "hookrelay_bench_noop" }

// riverNoop is River's burn-down of n no-op jobs, with hookrelay's worker
// count and fetch settings, in a schema of its own. It returns jobs per
// second and the WAL that inserting and working each job wrote.
// riverBaseline is River's no-op burn-down: its rate, and what each job
// costs in WAL and CPU (this process's and Postgres's; 0 when Postgres runs
// out of this machine's sight).
type riverBaseline struct {
	perS, walPerJob             float64
	processCPUUS, postgresCPUUS float64
}

func riverNoop(ctx context.Context, pool *pgxpool.Pool, n int) (*riverBaseline, error) {
	if _, err := pool.Exec(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS %[1]s CASCADE; CREATE SCHEMA %[1]s", benchRiverSchema)); err != nil {
		return nil, err
	}
	defer func() {
		_, _ = pool.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+benchRiverSchema+" CASCADE")
	}()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: benchRiverSchema})
	if err != nil {
		return nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, err
	}

	var done atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[noopArgs]) error {
		done.Add(1)
		return nil
	}))
	client, err := river.NewClient(driver, &river.Config{
		Schema:            benchRiverSchema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: jobs.MaxWorkersDefault}},
		Workers:           workers,
		FetchCooldown:     jobs.FetchCooldownDefault,
		FetchPollInterval: jobs.FetchPollIntervalDefault,
		Logger:            discardLogger,
	})
	if err != nil {
		return nil, err
	}
	walBefore, _, err := walAndSize(ctx, pool)
	if err != nil {
		return nil, err
	}
	for inserted := 0; inserted < n; {
		batch := make([]river.InsertManyParams, min(5000, n-inserted))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			return nil, err
		}
		inserted += len(batch)
	}
	pg, pgVisible := newPostgresCPU(ctx, pool)
	var pgBefore, pgAfter time.Duration
	if pgVisible {
		if pgBefore, err = pg.read(); err != nil {
			return nil, err
		}
	}
	cpuBefore, err := processCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	err = waitUntil(ctx, 10*time.Minute, func() bool { return done.Load() >= int64(n) })
	elapsed := time.Since(start)
	cpuAfter, cpuErr := processCPU(os.Getpid())
	if pgVisible && cpuErr == nil {
		pgAfter, cpuErr = pg.read()
	}
	if err == nil {
		err = cpuErr
	}
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if stopErr := client.Stop(stopCtx); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}
	walAfter, _, err := walAndSize(ctx, pool)
	perJob := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return &riverBaseline{
		perS:          float64(n) / elapsed.Seconds(),
		walPerJob:     float64(walAfter-walBefore) / float64(n),
		processCPUUS:  perJob(cpuAfter - cpuBefore),
		postgresCPUUS: perJob(pgAfter - pgBefore),
	}, err
}

// throughput publishes events from writers concurrent transactions and
// returns signed deliveries per second until the receiver has them all.
func (e *environment) throughput(ctx context.Context, events, writers int) (float64, error) {
	want := int64(events * e.hooks)
	before := e.counter.verified.Load()

	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, writers)
	for range writers {
		go func() {
			for next.Add(1) <= int64(events) {
				if _, err := e.store.Publish(ctx, &outbox.Event{Type: outbox.EventUserCreated, Data: sampleData}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	if err := waitUntil(ctx, 30*time.Minute, func() bool { return e.counter.verified.Load()-before >= want }); err != nil {
		return 0, fmt.Errorf("%d of %d deliveries arrived: %w", e.counter.verified.Load()-before, want, err)
	}
	if bad := e.rec.BadSignatures.Load(); bad > 0 {
		return 0, fmt.Errorf("%d deliveries had a bad signature", bad)
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

// sampleData is about 100 bytes of JSON, a small identity entity.
var sampleData = json.RawMessage(`{"id":"u_0123456789","username":"ann","primaryEmail":"ann@example.com","name":"Ann Example"}`) //nolint:gochecknoglobals

// latency offers rate deliveries/s for duration and returns the percentiles
// of commit → receipt, and when each event committed.
func (e *environment) latency(ctx context.Context, rate int, duration time.Duration, viaSQL bool) (Percentiles, map[string]time.Time, error) {
	eventsPerS := max(rate/e.hooks, 1)
	total := int(duration.Seconds() * float64(eventsPerS))
	e.counter.tracking.Store(true)
	defer e.counter.tracking.Store(false)
	e.counter.takeArrivals()

	var mu sync.Mutex
	committed := make(map[string]time.Time, total)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var firstErr atomic.Value
	start := time.Now()
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(eventsPerS))))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var id string
			var err error
			if viaSQL {
				id, err = e.store.PublishSQL(ctx, outbox.EventUserCreated, sampleData, nil, "", "")
			} else {
				id, err = e.store.Publish(ctx, &outbox.Event{Type: outbox.EventUserCreated, Data: sampleData})
			}
			at := time.Now()
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			mu.Lock()
			committed[id] = at
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return Percentiles{}, nil, err
	}

	var arrivals []*receiver.Delivery
	err := waitUntil(ctx, time.Minute, func() bool {
		arrivals = append(arrivals, e.counter.takeArrivals()...)
		return len(arrivals) >= total*e.hooks
	})
	if err != nil {
		return Percentiles{}, nil, fmt.Errorf("%d of %d deliveries arrived: %w", len(arrivals), total*e.hooks, err)
	}
	seen := map[[2]string]bool{}
	var ms []float64
	for _, a := range arrivals {
		key := [2]string{a.EventID, a.HookID}
		if commit, ok := committed[a.EventID]; ok && !seen[key] {
			seen[key] = true
			ms = append(ms, float64(a.At.Sub(commit).Microseconds())/1000)
		}
	}
	return percentiles(ms), committed, nil
}

func percentiles(ms []float64) Percentiles {
	if len(ms) == 0 {
		return Percentiles{}
	}
	slices.Sort(ms)
	at := func(p float64) float64 { return ms[min(int(p*float64(len(ms))), len(ms)-1)] }
	return Percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99), N: len(ms)}
}

// footprint is the schema's size (tables, indexes, TOAST, River's included)
// and row count per event.
func (e *environment) footprint(ctx context.Context, events int) (bytesPerEvent, rowsPerEvent float64, err error) {
	var bytes, rows int64
	err = e.pool.QueryRow(ctx, `
		SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r'`, benchSchema).Scan(&bytes)
	if err != nil {
		return 0, 0, err
	}
	err = e.pool.QueryRow(ctx, fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[1]s.events) + (SELECT count(*) FROM %[1]s.deliveries) +
		(SELECT count(*) FROM %[1]s.delivery_attempts) + (SELECT count(*) FROM %[1]s.river_job)`, benchSchema)).Scan(&rows)
	return float64(bytes) / float64(events), float64(rows) / float64(events), err
}

// afterRetention deletes every finished event, as retention will once they
// are old, and returns the rows left per event (River's completed jobs, which
// River's own cleaner removes after a day).
func (e *environment) afterRetention(ctx context.Context) (float64, error) {
	var events int64
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM "+benchSchema+".events").Scan(&events); err != nil {
		return 0, err
	}
	for {
		n, err := e.store.DeleteFinishedEvents(ctx, time.Now().Add(time.Hour), 5000)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			break
		}
	}
	_, rows, err := e.footprint(ctx, int(events))
	return rows, err
}

// publishOverhead runs 32 writers of an identity-like transaction, with a
// plain 500-byte INSERT or with PublishTx of a 500-byte event instead, in
// alternating rounds (so that a checkpoint or autovacuum weighs on both), and
// returns both rates in transactions per second.
func publishOverhead(ctx context.Context, pool *pgxpool.Pool, store *outbox.Store, duration time.Duration) (plain, publish float64, err error) {
	const writers = 32
	setup := fmt.Sprintf(`
		CREATE TABLE IF NOT EXISTS %[1]s.users (id bigint PRIMARY KEY, email text UNIQUE, profile jsonb, updated_at timestamptz);
		CREATE TABLE IF NOT EXISTS %[1]s.audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb NOT NULL);
		TRUNCATE %[1]s.users, %[1]s.audit`, benchSchema)
	if _, err := pool.Exec(ctx, setup); err != nil {
		return 0, 0, err
	}
	payload := json.RawMessage(`{"data":"` + strings.Repeat("x", 490) + `"}`)
	var ids atomic.Int64
	run := func(withPublish bool, duration time.Duration) (int64, error) {
		var count atomic.Int64
		deadline := time.Now().Add(duration)
		errs := make(chan error, writers)
		for range writers {
			go func() {
				for time.Now().Before(deadline) {
					id := ids.Add(1)
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s.users (id, email, profile, updated_at) VALUES ($1, $2, $3, now())", benchSchema),
							id, fmt.Sprintf("u%d@example.com", id), sampleData); err != nil {
							return err
						}
						if withPublish {
							_, err := store.PublishTx(ctx, tx, &outbox.Event{Type: outbox.EventUserCreated, Data: payload})
							return err
						}
						_, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s.audit (payload) VALUES ($1)", benchSchema), payload)
						return err
					})
					if err != nil {
						errs <- err
						return
					}
					count.Add(1)
				}
				errs <- nil
			}()
		}
		for range writers {
			if err := <-errs; err != nil {
				return 0, err
			}
		}
		return count.Load(), nil
	}
	const rounds = 5
	var plainCount, publishCount int64
	for range rounds {
		n, err := run(false, duration/rounds)
		if err != nil {
			return 0, 0, err
		}
		plainCount += n
		if n, err = run(true, duration/rounds); err != nil {
			return 0, 0, err
		}
		publishCount += n
	}
	return float64(plainCount) / duration.Seconds(), float64(publishCount) / duration.Seconds(), nil
}

// hangingHook adds a hook whose receiver holds every request until the
// client gives up, and returns a func that removes both.
func (e *environment) hangingHook(ctx context.Context) (func(), error) {
	release := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	hook, err := e.store.CreateHook(ctx, &outbox.HookParams{URL: server.URL + "/hang", Events: []string{"*"}})
	if err != nil {
		server.Close()
		return nil, err
	}
	return func() {
		_ = e.store.DeleteHook(context.WithoutCancel(ctx), hook.ID)
		close(release)
		server.Close()
	}, nil
}

// flakyReceiver answers at once, except that it holds the first attempt of
// one delivery in twenty (by webhook-id) past the request timeout.
type flakyReceiver struct {
	mu       sync.Mutex
	attempts map[string]int       // webhook-id → requests
	answered map[string]time.Time // event ID → when its delivery was answered
	held     map[string]bool      // event ID → its first attempt was held
}

// flakyHook adds a hook on a flakyReceiver, and returns it and a func that
// removes both.
func (e *environment) flakyHook(ctx context.Context) (*flakyReceiver, func(), error) {
	flaky := &flakyReceiver{attempts: map[string]int{}, answered: map[string]time.Time{}, held: map[string]bool{}}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			EventID string `json:"eventId"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		id := r.Header.Get("webhook-id")
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		flaky.mu.Lock()
		flaky.attempts[id]++
		hold := flaky.attempts[id] == 1 && h.Sum32()%20 == 0
		if hold {
			flaky.held[body.EventID] = true
		} else {
			flaky.answered[body.EventID] = time.Now()
		}
		flaky.mu.Unlock()
		if hold {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	hook, err := e.store.CreateHook(ctx, &outbox.HookParams{URL: server.URL + "/flaky", Events: []string{"*"}})
	if err != nil {
		server.Close()
		return nil, nil, err
	}
	return flaky, func() {
		_ = e.store.DeleteHook(context.WithoutCancel(ctx), hook.ID)
		server.Close()
	}, nil
}

// outcome waits until every committed event reached the flaky receiver and
// returns the percentiles of commit → answer of the deliveries answered at
// once, and of those held once.
func (f *flakyReceiver) outcome(ctx context.Context, committed map[string]time.Time) (prompt, held Percentiles, err error) {
	err = waitUntil(ctx, 2*time.Minute, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for id := range committed {
			if _, ok := f.answered[id]; !ok {
				return false
			}
		}
		return true
	})
	if err != nil {
		return Percentiles{}, Percentiles{}, fmt.Errorf("deliveries to the flaky hook: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var promptMS, heldMS []float64
	for id, commit := range committed {
		ms := float64(f.answered[id].Sub(commit).Microseconds()) / 1000
		if f.held[id] {
			heldMS = append(heldMS, ms)
		} else {
			promptMS = append(promptMS, ms)
		}
	}
	held = percentiles(heldMS)
	if len(heldMS) > 0 {
		held.P99 = slices.Max(heldMS) // the worst held delivery, not its 99th percentile
	}
	return percentiles(promptMS), held, nil
}

// wakeLatency publishes one event after each of samples quiet spells long
// enough for the pollers to fall asleep, and returns the percentiles of
// commit → receipt.
func (e *environment) wakeLatency(ctx context.Context, samples int) (Percentiles, error) {
	e.counter.tracking.Store(true)
	defer e.counter.tracking.Store(false)
	e.counter.takeArrivals()
	var ms []float64
	for range samples {
		time.Sleep(jobs.PollerSleepAfter + 500*time.Millisecond)
		id, err := e.store.Publish(ctx, &outbox.Event{Type: outbox.EventUserCreated, Data: sampleData})
		if err != nil {
			return Percentiles{}, err
		}
		committed := time.Now()
		var arrivals []*receiver.Delivery
		err = waitUntil(ctx, time.Minute, func() bool {
			arrivals = append(arrivals, e.counter.takeArrivals()...)
			return len(arrivals) >= e.hooks
		})
		if err != nil {
			return Percentiles{}, fmt.Errorf("wake-up delivery: %w", err)
		}
		for _, a := range arrivals {
			if a.EventID == id {
				ms = append(ms, float64(a.At.Sub(committed).Microseconds())/1000)
			}
		}
	}
	return percentiles(ms), nil
}

// fanOutHooks and fanOutEvents size the filters phase: events fanned out to
// that many hooks, all with a filter that the events pass, or none.
const (
	fanOutHooks  = 100
	fanOutEvents = 2000
)

// fanOutFilters is the fan-out's cost per delivery made, in microseconds of
// this process's wall clock (the fan-out is one statement after another),
// to fanOutHooks hooks without filters and then with one each, in a schema
// of its own. The hooks' URLs are never sent to: no worker runs.
func fanOutFilters(ctx context.Context, pool *pgxpool.Pool) (unfiltered, filtered float64, err error) {
	const schema = "hookrelay_bench_fanout"
	perDelivery := func(filter string) (float64, error) {
		if _, err := pool.Exec(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS %[1]s CASCADE", schema)); err != nil {
			return 0, err
		}
		defer func() { _, _ = pool.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") }()
		store, err := outbox.NewStore(pool, &outbox.Config{Schema: schema})
		if err != nil {
			return 0, err
		}
		if err := store.Migrate(ctx); err != nil {
			return 0, err
		}
		for i := range fanOutHooks {
			_, err := store.CreateHook(ctx, &outbox.HookParams{URL: fmt.Sprintf("https://hooks.example.com/%d", i), Events: []string{"*"}, Filter: filter})
			if err != nil {
				return 0, err
			}
		}
		_, err = pool.Exec(ctx, fmt.Sprintf(`SELECT %s.publish('User.Created', '{"organizationId": "org_1", "name": "Ann"}') FROM generate_series(1, $1)`, schema), fanOutEvents)
		if err != nil {
			return 0, err
		}
		start, deliveries := time.Now(), 0
		for {
			var res *outbox.FanOutResult
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var err error
				res, err = store.FanOutTx(ctx, tx, fanOutHooks)
				return err
			})
			if err != nil {
				return 0, err
			}
			if res.Events == 0 {
				break
			}
			for _, group := range res.Deliveries {
				deliveries += len(group.DeliveryIDs)
			}
		}
		if deliveries != fanOutHooks*fanOutEvents {
			return 0, fmt.Errorf("fan-out made %d deliveries, want %d", deliveries, fanOutHooks*fanOutEvents)
		}
		return float64(time.Since(start).Microseconds()) / float64(deliveries), nil
	}
	if unfiltered, err = perDelivery(""); err != nil {
		return 0, 0, err
	}
	filtered, err = perDelivery(`$.data.organizationId == "org_1"`)
	return unfiltered, filtered, err
}
