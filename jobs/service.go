package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// Relay is hookrelay's work: it fans events out to deliveries and delivers
// them, as River jobs on a River client. Add it to the application's own
// client (AddWorkers, AddQueues, PeriodicJobs, then Start), or let
// NewService give it a client of its own. Any number of processes may run it
// against one database; River shares the work among them.
type Relay struct {
	config      *Config
	store       *outbox.Store
	metrics     *metrics
	deliverOpts *river.InsertOpts
	client      atomic.Pointer[river.Client[pgx.Tx]]

	// The poller and the rescuer run beside River's client.
	stopLoops  context.CancelFunc
	loops      sync.WaitGroup
	lastFanOut *rivertype.JobRow // the poller's latest fan-out job
	// fanOutRunning counts fan-out jobs running in this process: while one
	// claims events as they come, the poller need not look.
	fanOutRunning atomic.Int32
	// stopping ends lingering fan-out jobs, so that Stop drains quickly
	// (here.stop ends lingering deliver runs).
	stopping atomic.Bool
	// owner tells whether the process holds its lock (see liveness.go);
	// its base context, cancelled by Drain at its deadline, ends every
	// request. detached counts the requests that outlive the run that made
	// them (see deliverWorker.sendAll), for Drain to wait for.
	owner      *owner
	cancelBase context.CancelFunc
	detached   sync.WaitGroup
	// stopLock ends holding the process lock; lockHeld is closed when it
	// is released. startedAt is when Start took it.
	stopLock  context.CancelFunc
	lockHeld  chan struct{}
	startedAt time.Time
	// superseded receives ErrSchemaNewer once a later release migrated the
	// schema (see watchSchema).
	superseded chan error
	// here are the deliver jobs running in this process, and waker wakes
	// those running elsewhere once their runs end (wake.go).
	here  *localRuns
	waker *waker
}

// River queues. Fan-out has a queue of its own so that it never waits for a
// free worker behind a backlog of deliveries; on a shared client, the
// application's queues and hookrelay's have their own workers, so neither can
// starve the other.
const (
	// QueueDeliver holds hookrelay_deliver jobs.
	QueueDeliver = "hookrelay_deliver"
	// QueueControl holds hookrelay_fanout, hookrelay_retention and
	// hookrelay_reconcile jobs.
	QueueControl = "hookrelay_control"

	controlMaxWorkers = 4
)

// New returns a relay for config, which must name a Store. It has no River
// client until Start.
func New(config *Config) (*Relay, error) {
	if config == nil || config.Store == nil {
		return nil, errors.New("jobs: Config.Store is required")
	}
	config = config.withDefaults()
	base, cancelBase := context.WithCancel(context.Background())
	return &Relay{
		owner:       newOwner(base),
		cancelBase:  cancelBase,
		superseded:  make(chan error, 1),
		config:      config,
		store:       config.Store,
		metrics:     newMetrics(config.Store, config.Now, config.Logger),
		deliverOpts: &river.InsertOpts{Queue: QueueDeliver, MaxAttempts: deliverMaxAttempts},
		here:        newLocalRuns(config.MaxWorkers),
		waker:       &waker{},
	}, nil
}

// AddWorkers adds hookrelay's workers to workers, the Workers of the River
// client the relay will run on.
func (r *Relay) AddWorkers(workers *river.Workers) error {
	config := r.config
	timeout := jobTimeout(config.Timeout)
	return errors.Join(
		river.AddWorkerSafely(workers, &fanOutWorker{
			owner:        r.owner,
			store:        r.store,
			batchSize:    config.FanOutBatchSize,
			pollInterval: config.PollInterval,
			deliverOpts:  r.deliverOpts,
			metrics:      r.metrics,
			running:      &r.fanOutRunning,
			stopping:     &r.stopping,
			timeout:      timeout,
			tracer:       config.tracer(),
		}),
		river.AddWorkerSafely(workers, &deliverWorker{
			store:        r.store,
			sender:       newSender(config),
			schedule:     config.RetrySchedule,
			disableAfter: config.DisableAfter,
			gate:         newSlotGate(config.gateBounds(), time.Now),
			health:       newHealth(config.Logger),
			refused:      make(map[string]map[int64]struct{}),
			here:         r.here,
			waker:        r.waker,
			client:       r.Client,
			owner:        r.owner,
			inFlight:     &r.detached,
			metrics:      r.metrics,
			logger:       config.Logger,
			timeout:      config.Timeout,
			fetchPoll:    config.FetchPollInterval,
		}),
		river.AddWorkerSafely(workers, &reconcileWorker{
			owner:       r.owner,
			store:       r.store,
			deliverOpts: r.deliverOpts,
			metrics:     r.metrics,
			logger:      config.Logger,
			timeout:     timeout,
		}),
		river.AddWorkerSafely(workers, &retentionWorker{
			owner:     r.owner,
			store:     r.store,
			retention: config.Retention,
			now:       config.Now,
			metrics:   r.metrics,
			timeout:   timeout,
		}),
	)
}

// AddQueues returns queues (which may be nil) with hookrelay's queues added,
// each with its own workers and River fetch settings.
func (r *Relay) AddQueues(queues map[string]river.QueueConfig) map[string]river.QueueConfig {
	all := maps.Clone(queues)
	if all == nil {
		all = map[string]river.QueueConfig{}
	}
	queue := func(workers int) river.QueueConfig {
		return river.QueueConfig{MaxWorkers: workers, FetchCooldown: r.config.FetchCooldown, FetchPollInterval: r.config.FetchPollInterval}
	}
	all[QueueDeliver] = queue(r.config.MaxWorkers)
	all[QueueControl] = queue(controlMaxWorkers)
	return all
}

// PeriodicJobs are hookrelay's periodic jobs (retention and the
// reconciler), for the River client's PeriodicJobs.
func (r *Relay) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(
			river.PeriodicInterval(r.config.RetentionInterval),
			func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true},
		),
		river.NewPeriodicJob(
			river.PeriodicInterval(reconcileInterval),
			func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
			nil,
		),
	}
}

// Client returns the River client the relay runs on, or nil before Start.
func (r *Relay) Client() *river.Client[pgx.Tx] { return r.client.Load() }

// ErrNotStarted is returned by a Relay's operations that queue jobs before it
// has a River client.
var ErrNotStarted = errors.New("the relay has no River client yet: call Start with the client its workers were added to")

func (r *Relay) started() (*river.Client[pgx.Tx], error) {
	if client := r.Client(); client != nil {
		return client, nil
	}
	return nil, ErrNotStarted
}

// Registry returns the relay's Prometheus metrics.
func (r *Relay) Registry() *prometheus.Registry { return r.metrics.registry }

// Store returns the relay's store.
func (r *Relay) Store() *outbox.Store { return r.store }

// Working reports whether the relay works its jobs: it started and holds its
// process lock (one that lost it takes it again within seconds, see
// liveness.go).
func (r *Relay) Working() bool {
	_, held := r.owner.context()
	return r.Client() != nil && held
}

// Start starts polling the outbox for client and rescuing the jobs of dead
// processes; it returns at once. client must have the relay's workers and
// queues (AddWorkers, AddQueues); it may be started before or after.
func (r *Relay) Start(ctx context.Context, client *river.Client[pgx.Tx]) error {
	if client == nil {
		return errors.New("jobs: Start needs the River client the relay's workers were added to")
	}
	if err := r.store.CheckMigrated(ctx); err != nil {
		return err
	}
	if err := checkRiverTables(ctx, client); err != nil {
		return err
	}
	lock, err := r.store.TakeProcessLock(ctx, client.ID())
	if err != nil {
		return err
	}
	r.startedAt = time.Now()
	r.owner.acquired()
	lockCtx, stopLock := context.WithCancel(context.WithoutCancel(ctx))
	r.stopLock, r.lockHeld = stopLock, make(chan struct{})
	go func() {
		defer close(r.lockHeld)
		r.holdLock(lockCtx, lock, client.ID())
	}()
	r.client.Store(client)
	r.metrics.setClient(client, client.Schema() == r.store.Schema())
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.stopLoops = cancel
	r.loops.Go(func() { r.poll(loopCtx) })
	r.loops.Go(func() { r.rescue(loopCtx) })
	r.loops.Go(func() { r.watchSchema(loopCtx) })
	r.loops.Go(func() { r.hearWakes(loopCtx) })
	return nil
}

// Superseded receives outbox.ErrSchemaNewer, saying which versions, when a
// later release of hookrelay migrated the schema after Start: the relay then
// stopped working its jobs for good, which the later release's processes
// work. Stop the process then; serve exits with the error.
func (r *Relay) Superseded() <-chan error { return r.superseded }

// Stop stops polling and rescuing, and makes running fan-out jobs finish
// soon; stop the River client to drain its jobs, then call Drain.
func (r *Relay) Stop() {
	r.stopping.Store(true)
	r.here.stop()
	if r.stopLoops != nil {
		r.stopLoops()
		r.loops.Wait()
	}
}

// Drain waits for the requests that deliver jobs left in flight to end and
// record their outcomes; if ctx ends first, it cancels them (their
// deliveries go again later) and waits for that. Then it releases the
// process lock. Call it after the River client stopped: until then, the
// process's jobs are its own.
func (r *Relay) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		r.detached.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		r.cancelBase()
		<-done
		err = ctx.Err()
	}
	// No run is left to wake another process's job: those wake at their
	// backstop (see orderRecheck).
	r.waker.stop()
	if r.stopLock != nil {
		r.stopLock()
		<-r.lockHeld
		if client := r.Client(); client != nil {
			_ = r.store.ForgetProcesses(context.WithoutCancel(ctx), []string{client.ID()})
		}
	}
	return err
}

// checkRiverTables says what to do when client's schema has no River tables.
func checkRiverTables(ctx context.Context, client *river.Client[pgx.Tx]) error {
	exists, err := client.Driver().GetExecutor().TableExists(ctx, &riverdriver.TableExistsParams{Schema: client.Schema(), Table: "river_job"})
	if err != nil {
		return fmt.Errorf("look for River's tables: %w", err)
	}
	if !exists {
		return fmt.Errorf("%w: River's tables are missing from schema %q of the River client: run River's migrations there (rivermigrate, or hookrelay migrate for hookrelay's own schema)",
			outbox.ErrNotMigrated, cmp.Or(client.Schema(), "(search_path)"))
	}
	return nil
}

// Service is a Relay on a River client of its own, on River's tables in the
// store's RiverSchema: what hookrelay serve runs.
type Service struct {
	*Relay
}

// NewService returns a service for config, which must name a Store. It can
// insert jobs (replays) at once; Start starts working them.
func NewService(config *Config) (*Service, error) {
	relay, err := New(config)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	if err := relay.AddWorkers(workers); err != nil {
		return nil, err
	}
	config = relay.config
	riverConfig := &river.Config{
		Schema:               relay.store.RiverSchema(),
		Queues:               relay.AddQueues(nil),
		Workers:              workers,
		FetchCooldown:        config.FetchCooldown,
		FetchPollInterval:    config.FetchPollInterval,
		JobTimeout:           jobTimeout(config.Timeout),
		RescueStuckJobsAfter: 2 * config.RescueAfter,
		Logger:               riverLogger(config.Logger),
		PeriodicJobs:         relay.PeriodicJobs(),
	}
	if relay.store.RiverSchema() != relay.store.Schema() {
		// River's tables are the application's: its clients lead. A leader
		// runs the periodic jobs it knows and rescues (or discards) stuck
		// jobs of every kind, which this client, knowing only hookrelay's
		// kinds, must not do.
		riverConfig.LeaderElectionDisabled = true
		riverConfig.PeriodicJobs = nil
		riverConfig.FetchOnlyKnownKinds = true
	}
	client, err := river.NewClient(riverpgxv5.New(relay.store.Pool()), riverConfig)
	if err != nil {
		return nil, fmt.Errorf("create River client: %w", err)
	}
	relay.client.Store(client)
	return &Service{Relay: relay}, nil
}

// Start starts working jobs, polling the outbox and rescuing the jobs of dead
// processes; it returns at once.
func (s *Service) Start(ctx context.Context) error {
	if err := s.Relay.Start(ctx, s.Client()); err != nil {
		return err
	}
	if err := s.Client().Start(ctx); err != nil {
		s.Relay.Stop()
		_ = s.Drain(ctx)
		return fmt.Errorf("start River client: %w", err)
	}
	return nil
}

// Stop stops polling, lets jobs in flight finish and returns; if ctx ends
// first, in-flight jobs are cancelled and River runs them again later.
func (s *Service) Stop(ctx context.Context) error {
	s.Relay.Stop()
	err := s.Client().Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.Client().StopAndCancel(context.Background())
	}
	// Requests still in flight when ctx ends are cancelled; their
	// deliveries go again when their leases end.
	_ = s.Drain(ctx)
	return err
}

// ErrTestNotSent is returned by TestHook when no worker took the test-send
// in time; it stays queued and goes out once one runs.
var ErrTestNotSent = errors.New("no worker sent the test delivery in time: is hookrelay serve running against this database?")

// TestHook queues a sample eventType event (by default, one of the types
// the hook receives: see outbox.CreateTestDelivery) for the hook, sent once by the
// workers, through the same guard and client as real traffic, whether the
// hook is enabled or not; it waits for the outcome and returns the delivery
// with its attempt. When no worker takes it in time, it returns the pending
// delivery and ErrTestNotSent.
func (s *Relay) TestHook(ctx context.Context, hookID, eventType string) (*outbox.Delivery, error) {
	client, err := s.started()
	if err != nil {
		return nil, err
	}
	var id string
	err = pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if id, err = s.store.CreateTestDeliveryTx(ctx, tx, hookID, eventType); err != nil {
			return err
		}
		_, err = client.InsertTx(ctx, tx, DeliverArgs{HookID: hookID, Deliveries: id, Test: true}, s.deliverOpts)
		return wrap(err, "queue the test delivery")
	})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(jobTimeout(s.config.Timeout) + recordTimeout + 10*time.Second)
	for {
		delivery, err := s.store.GetDelivery(ctx, id)
		if err != nil {
			return nil, err
		}
		if delivery.Status != outbox.DeliveryPending {
			return delivery, s.judgeFilter(ctx, delivery)
		}
		if time.Now().After(deadline) {
			return delivery, ErrTestNotSent
		}
		select {
		case <-ctx.Done():
			return delivery, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// judgeFilter tells, on a test delivery to a hook with a filter, whether
// its sample event passes it.
func (s *Relay) judgeFilter(ctx context.Context, delivery *outbox.Delivery) error {
	hook, err := s.store.GetHook(ctx, delivery.HookID)
	if err != nil || hook.Filter == "" {
		return err
	}
	passes, err := s.store.FilterPasses(ctx, hook.Filter, delivery.EventID)
	delivery.PassesFilter = &passes
	return err
}

// ErrDeliveryPending is returned when replaying a delivery still being
// attempted.
var ErrDeliveryPending = errors.New("delivery is pending: it is being attempted already")

// ErrHookDisabled is returned when replaying deliveries of a disabled hook.
var ErrHookDisabled = errors.New("hook is disabled: enable it before replaying its deliveries")

// ReplayDelivery sends a finished delivery again, with the same webhook-id,
// or a pending one that no job carries any longer (its job was deleted).
func (s *Relay) ReplayDelivery(ctx context.Context, id string) error {
	client, err := s.started()
	if err != nil {
		return err
	}
	delivery, err := s.store.GetDelivery(ctx, id)
	if err != nil {
		return err
	}
	if err := s.checkHookEnabled(ctx, delivery.HookID); err != nil {
		return err
	}
	if delivery.Status == outbox.DeliveryPending {
		live, err := hasLiveJob(ctx, client, id)
		if err != nil || live {
			return cmp.Or(err, ErrDeliveryPending)
		}
		return pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
			if err := s.store.MakeDueTx(ctx, tx, id); err != nil {
				return err
			}
			_, err := client.InsertManyTx(ctx, tx, deliverJobs(delivery.HookID, []string{id}, s.deliverOpts))
			return wrap(err, "queue a job for delivery %s", id)
		})
	}
	n, err := s.replay(ctx, delivery.HookID, []string{id})
	if err == nil && n == 0 {
		return ErrDeliveryPending // another replay won the race
	}
	return err
}

// ReplayRange sends a hook's finished deliveries in r again and returns how
// many it queued; pending ones are skipped.
func (s *Relay) ReplayRange(ctx context.Context, r *outbox.ReplayRange) (int, error) {
	ids, err := s.store.DeliveryIDsInRange(ctx, r)
	if err != nil {
		return 0, err
	}
	if err := s.checkHookEnabled(ctx, r.HookID); err != nil {
		return 0, err
	}
	return s.replay(ctx, r.HookID, ids)
}

func (s *Relay) checkHookEnabled(ctx context.Context, hookID string) error {
	hook, err := s.store.GetHook(ctx, hookID)
	if err != nil {
		return err
	}
	if !hook.Enabled {
		return ErrHookDisabled
	}
	return nil
}

// replay resets deliveries of hookID to pending and queues their jobs in one
// transaction; it returns how many deliveries it queued.
func (s *Relay) replay(ctx context.Context, hookID string, ids []string) (int, error) {
	client, err := s.started()
	if err != nil {
		return 0, err
	}
	var count int
	err = pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		reset, err := s.store.ResetDeliveriesTx(ctx, tx, ids)
		if err != nil || len(reset) == 0 {
			return err
		}
		if _, err := client.InsertManyFastTx(ctx, tx, deliverJobs(hookID, reset, s.deliverOpts)); err != nil {
			return fmt.Errorf("insert replay jobs: %w", err)
		}
		count = len(reset)
		return nil
	})
	return count, err
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
