package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookrelay/hookrelay/outbox"
)

// Service runs hookrelay's River client: it fans events out to deliveries and
// delivers them. Any number of services may run against one database; River
// shares the work among them.
type Service struct {
	config      *Config
	store       *outbox.Store
	client      *river.Client[pgx.Tx]
	metrics     *metrics
	deliverOpts *river.InsertOpts

	// The poller and the rescuer run beside River's client.
	stopLoops  context.CancelFunc
	loops      sync.WaitGroup
	lastFanOut *rivertype.JobRow // the poller's latest fan-out job
	// fanOutRunning counts fan-out jobs running in this process: while one
	// claims events as they come, the poller need not look.
	fanOutRunning atomic.Int32
	// stopping ends lingering fan-out jobs, so that Stop drains quickly.
	stopping atomic.Bool
}

// River queues. Fan-out has a queue of its own so that it never waits for a
// free worker behind a backlog of deliveries.
const (
	// QueueDeliver holds hookrelay_deliver jobs.
	QueueDeliver = "hookrelay_deliver"
	// QueueControl holds hookrelay_fanout and hookrelay_retention jobs.
	QueueControl = "hookrelay_control"

	controlMaxWorkers = 4
)

// NewService returns a service for config, which must name a Store. It can
// insert jobs (replays) at once; Start starts working them.
func NewService(config *Config) (*Service, error) {
	if config == nil || config.Store == nil {
		return nil, errors.New("jobs: Config.Store is required")
	}
	config = config.withDefaults()
	s := &Service{
		config:      config,
		store:       config.Store,
		metrics:     newMetrics(config.Store, config.Now, config.Logger),
		deliverOpts: &river.InsertOpts{Queue: QueueDeliver, MaxAttempts: deliverMaxAttempts(config.RetrySchedule)},
	}

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &fanOutWorker{
		store:        s.store,
		batchSize:    config.FanOutBatchSize,
		pollInterval: config.PollInterval,
		deliverOpts:  s.deliverOpts,
		metrics:      s.metrics,
		running:      &s.fanOutRunning,
		stopping:     &s.stopping,
	}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &deliverWorker{
		store:        s.store,
		sender:       newSender(config),
		schedule:     config.RetrySchedule,
		disableAfter: config.DisableAfter,
		gate:         newHookGate(config.Timeout, time.Now),
		metrics:      s.metrics,
		logger:       config.Logger,
	}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &reconcileWorker{
		store:       s.store,
		deliverOpts: s.deliverOpts,
		metrics:     s.metrics,
		logger:      config.Logger,
	}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &retentionWorker{
		store:     s.store,
		retention: config.Retention,
		now:       config.Now,
		metrics:   s.metrics,
	}); err != nil {
		return nil, err
	}

	client, err := river.NewClient(riverpgxv5.New(s.store.Pool()), &river.Config{
		Schema: s.store.Schema(),
		Queues: map[string]river.QueueConfig{
			QueueDeliver: {MaxWorkers: config.MaxWorkers},
			QueueControl: {MaxWorkers: controlMaxWorkers},
		},
		Workers:           workers,
		FetchCooldown:     config.FetchCooldown,
		FetchPollInterval: config.FetchPollInterval,
		JobTimeout:        jobTimeout(config.Timeout),
		// hookrelay's rescuer gives stranded jobs back first; River's own
		// (every 30 s, then on the retry schedule) is the backstop.
		RescueStuckJobsAfter: 2 * config.RescueAfter,
		Logger:               riverLogger(config.Logger),
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(
				river.PeriodicInterval(config.RetentionInterval),
				func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true},
			),
			river.NewPeriodicJob(
				river.PeriodicInterval(reconcileInterval),
				func() (river.JobArgs, *river.InsertOpts) { return ReconcileArgs{}, nil },
				nil,
			),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create River client: %w", err)
	}
	s.client = client
	return s, nil
}

// Client returns the service's River client, for River UI.
func (s *Service) Client() *river.Client[pgx.Tx] { return s.client }

// Registry returns the service's Prometheus metrics.
func (s *Service) Registry() *prometheus.Registry { return s.metrics.registry }

// Store returns the service's store.
func (s *Service) Store() *outbox.Store { return s.store }

// Start starts working jobs, polling the outbox and rescuing the jobs of dead
// processes; it returns at once.
func (s *Service) Start(ctx context.Context) error {
	if err := s.store.CheckMigrated(ctx); err != nil {
		return err
	}
	if err := s.client.Start(ctx); err != nil {
		return fmt.Errorf("start River client: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopLoops = cancel
	s.loops.Go(func() { s.poll(loopCtx) })
	s.loops.Go(func() { s.rescue(loopCtx) })
	return nil
}

// Stop stops polling, lets jobs in flight finish and returns; if ctx ends
// first, in-flight jobs are cancelled and River runs them again later.
func (s *Service) Stop(ctx context.Context) error {
	s.stopping.Store(true)
	if s.stopLoops != nil {
		s.stopLoops()
		s.loops.Wait()
	}
	err := s.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return s.client.StopAndCancel(context.Background())
	}
	return err
}

// TestEventTypeDefault is the event type of a test-send unless told
// otherwise.
const TestEventTypeDefault = "PostSignIn"

// ErrTestNotSent is returned by TestHook when no worker took the test-send
// in time; it stays queued and goes out once one runs.
var ErrTestNotSent = errors.New("no worker sent the test delivery in time: is hookrelay serve running against this database?")

// TestHook queues a sample eventType event for the hook, sent once by the
// workers, through the same guard and client as real traffic, whether the
// hook is enabled or not; it waits for the outcome and returns the delivery
// with its attempt. When no worker takes it in time, it returns the pending
// delivery and ErrTestNotSent.
func (s *Service) TestHook(ctx context.Context, hookID, eventType string) (*outbox.Delivery, error) {
	if eventType == "" {
		eventType = TestEventTypeDefault
	}
	var id string
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if id, err = s.store.CreateTestDeliveryTx(ctx, tx, hookID, eventType); err != nil {
			return err
		}
		_, err = s.client.InsertTx(ctx, tx, DeliverArgs{HookID: hookID, Deliveries: id, Test: true}, s.deliverOpts)
		return wrap(err, "queue the test delivery")
	})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(jobTimeout(s.config.Timeout) + recordTimeout + 10*time.Second)
	for {
		delivery, err := s.store.GetDelivery(ctx, id)
		if err != nil || delivery.Status != outbox.DeliveryPending {
			return delivery, err
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

// ErrDeliveryPending is returned when replaying a delivery still being
// attempted.
var ErrDeliveryPending = errors.New("delivery is pending: it is being attempted already")

// ErrHookDisabled is returned when replaying deliveries of a disabled hook.
var ErrHookDisabled = errors.New("hook is disabled: enable it before replaying its deliveries")

// ReplayDelivery sends a finished delivery again, with the same webhook-id,
// or a pending one that no job carries any longer (its job was deleted).
func (s *Service) ReplayDelivery(ctx context.Context, id string) error {
	delivery, err := s.store.GetDelivery(ctx, id)
	if err != nil {
		return err
	}
	if err := s.checkHookEnabled(ctx, delivery.HookID); err != nil {
		return err
	}
	if delivery.Status == outbox.DeliveryPending {
		live, err := hasLiveJob(ctx, s.client, id)
		if err != nil || live {
			return cmp.Or(err, ErrDeliveryPending)
		}
		_, err = s.client.InsertMany(ctx, deliverJobs(delivery.HookID, []string{id}, s.deliverOpts))
		return wrap(err, "queue a job for delivery %s", id)
	}
	n, err := s.replay(ctx, delivery.HookID, []string{id})
	if err == nil && n == 0 {
		return ErrDeliveryPending // another replay won the race
	}
	return err
}

// ReplayRange sends a hook's finished deliveries in r again and returns how
// many it queued; pending ones are skipped.
func (s *Service) ReplayRange(ctx context.Context, r *outbox.ReplayRange) (int, error) {
	ids, err := s.store.DeliveryIDsInRange(ctx, r)
	if err != nil {
		return 0, err
	}
	if err := s.checkHookEnabled(ctx, r.HookID); err != nil {
		return 0, err
	}
	return s.replay(ctx, r.HookID, ids)
}

func (s *Service) checkHookEnabled(ctx context.Context, hookID string) error {
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
func (s *Service) replay(ctx context.Context, hookID string, ids []string) (int, error) {
	var count int
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		reset, err := s.store.ResetDeliveriesTx(ctx, tx, ids)
		if err != nil || len(reset) == 0 {
			return err
		}
		if _, err := s.client.InsertManyFastTx(ctx, tx, deliverJobs(hookID, reset, s.deliverOpts)); err != nil {
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
