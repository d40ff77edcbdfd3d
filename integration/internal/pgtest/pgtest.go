// Package pgtest runs one Postgres container per test package and gives each
// test its own database, cloned from a migrated template in milliseconds, so
// tests run in parallel without seeing each other's rows.
//
// The image comes from HOOKRELAY_TEST_PG_IMAGE and defaults to the official
// postgres:17. Machines that cannot pull images build a local one with
// integration/postgres-image/build.sh.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/hookrelay/hookrelay/outbox"
)

// ImageDefault is the image used when HOOKRELAY_TEST_PG_IMAGE is unset.
const ImageDefault = "postgres:17"

const templateDB = "hookrelay_template"

// Container is a running Postgres with a migrated template database.
type Container struct {
	container *postgres.PostgresContainer

	mu      sync.Mutex // CREATE DATABASE … TEMPLATE wants the template alone
	counter atomic.Int64
}

// Start runs the container and migrates the template database. Call
// Terminate when the package's tests are done.
func Start(ctx context.Context) (*Container, error) {
	image := os.Getenv("HOOKRELAY_TEST_PG_IMAGE")
	if image == "" {
		image = ImageDefault
	}
	pg, err := postgres.Run(ctx, image,
		postgres.WithDatabase("postgres"),
		postgres.WithUsername("postgres"),
		postgres.WithPassword("postgres"),
		testcontainers.WithCmdArgs("-c", "max_connections=500", "-c", "synchronous_commit=off"),
		postgres.BasicWaitStrategies(),
	)
	if err != nil {
		if pg != nil {
			_ = pg.Terminate(context.Background())
		}
		return nil, fmt.Errorf("start postgres container from image %s (set HOOKRELAY_TEST_PG_IMAGE, or build one with integration/postgres-image/build.sh): %w", image, err)
	}
	c := &Container{container: pg}
	if err := c.exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		_ = c.Terminate()
		return nil, err
	}
	if err := c.migrate(ctx, c.URL(templateDB)); err != nil {
		_ = c.Terminate()
		return nil, err
	}
	return c, nil
}

// Docker returns the underlying container, to stop, start or pause it.
func (c *Container) Docker() *postgres.PostgresContainer { return c.container }

// Terminate removes the container.
func (c *Container) Terminate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.container.Terminate(ctx)
}

// URL returns the connection string of database name. It is read anew each
// time: a container stopped and started again gets another host port.
func (c *Container) URL(name string) string {
	endpoint, err := c.container.PortEndpoint(context.Background(), "5432/tcp", "")
	if err != nil {
		panic(fmt.Sprintf("pgtest: container has no endpoint: %v", err))
	}
	return fmt.Sprintf("postgres://postgres:postgres@%s/%s?sslmode=disable", endpoint, name)
}

// NewDatabase creates a database cloned from the migrated template, dropped
// when the test ends, and returns its connection string.
func (c *Container) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), c.counter.Add(1))
	c.mu.Lock()
	err := c.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, templateDB))
	c.mu.Unlock()
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := c.exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return c.URL(name)
}

// NewPool is NewDatabase with a pool onto it, closed when the test ends.
func (c *Container) NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.NewDatabase(t))
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewEmptyDatabase creates a database without hookrelay's schema, dropped when
// the test ends, and returns its connection string.
func (c *Container) NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("empty_%d_%d", os.Getpid(), c.counter.Add(1))
	if err := c.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create empty database: %v", err)
	}
	t.Cleanup(func() {
		_ = c.exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return c.URL(name)
}

func (c *Container) migrate(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := outbox.NewStore(pool, nil)
	if err != nil {
		return err
	}
	return store.Migrate(ctx)
}

func (c *Container) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
