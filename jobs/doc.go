// Package jobs runs hookrelay's River jobs: hookrelay_fanout turns published
// events into deliveries, hookrelay_deliver sends a hook's batch of them,
// signed, with retries, hookrelay_reconcile gives pending deliveries without
// a job one, and hookrelay_retention deletes finished events past the
// retention.
//
// # Running
//
//	service, err := jobs.NewService(&jobs.Config{Store: store})
//	if err != nil {
//		return err
//	}
//	if err := service.Start(ctx); err != nil {
//		return err
//	}
//	defer service.Stop(context.Background())
//
// Any number of services, in any number of processes, may run against one
// database: River's locking shares the work, each process polls the outbox
// for unclaimed events (and sleeps on LISTEN when idle), and each gives back
// the jobs a dead process left running (see rescuer.go). Each holds a process
// lock on a connection of its own, so it needs a direct connection to
// Postgres or a pooler in session mode.
//
// # Guarantees
//
// Fan-out happens once per event, in one transaction with its job's
// completion. Every delivery is attempted until it succeeds, fails its last
// attempt, or its hook is disabled or deleted; a process killed at any
// instant loses nothing: survivors learn of its death from its process lock
// and give its work back within seconds (see liveness.go and rescuer.go). A receiver may see a delivery twice, always with the same
// webhook-id. A delivery's fate is its own: it waits for its own next
// attempt, counted on the delivery, and no other delivery's timeout, reset
// or error delays it (see deliverWorker.Work). A run waits for its requests
// briefly and leaves slower ones to record their own outcomes, and a hook
// has at most Config.HookConcurrency requests in flight per process (a
// receiver host Config.HostConcurrency, over as many kept-alive connections),
// so one hook's dead or slow receiver never delays deliveries to other hooks.
//
// # Safety
//
// Deliveries never reach loopback, private, link-local or other internal
// addresses unless Config.AllowCIDRs includes them; the check runs on every
// connection after DNS resolution. Job args hold IDs only, never a secret.
package jobs
