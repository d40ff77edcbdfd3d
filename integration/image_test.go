package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hookrelay/hookrelay/outbox"
)

const image = "hookrelay:latest"

// requireImage skips the test unless hookrelay's image was built (make
// image), and fails it under CI, which builds it.
func requireImage(t *testing.T) {
	t.Helper()
	if exec.Command("docker", "image", "inspect", image).Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("image %s is missing: run make image", image)
		}
		t.Skipf("image %s is missing: run make image", image)
	}
}

// runImage runs the image with args on the host's network (its receivers
// and Postgres are on loopback), and returns the container once wait holds.
func runImage(t *testing.T, env map[string]string, waitFor wait.Strategy, args ...string) testcontainers.Container {
	t.Helper()
	c, err := testcontainers.GenericContainer(context.Background(), testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: image, Cmd: args, Env: env, WaitingFor: waitFor,
			HostConfigModifier: func(hc *container.HostConfig) { hc.NetworkMode = "host" },
		},
		Started: true,
	})
	if c != nil {
		t.Cleanup(func() { _ = c.Terminate(context.Background()) })
	}
	require.NoError(t, err)
	return c
}

// TestImage runs hookrelay's image as users would: migrate, then serve
// against Postgres, and a delivery arrives, signed; it runs as a user that is
// not root, its health check passes, and it is small.
func TestImage(t *testing.T) {
	requireImage(t)
	t.Parallel()
	ctx := context.Background()
	url := strings.Replace(pg.NewEmptyDatabase(t), "localhost", "127.0.0.1", 1)
	env := map[string]string{"DATABASE_URL": url}

	migrate := runImage(t, env, wait.ForExit().WithExitTimeout(time.Minute), "migrate")
	state, err := migrate.State(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, state.ExitCode, "migrate")

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := outbox.NewStore(pool, nil)
	require.NoError(t, err)
	rec := newReceiver(t, nil)
	hook, err := store.CreateHook(ctx, &outbox.HookParams{URL: rec.URL, Events: []string{"*"}})
	require.NoError(t, err)

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	require.NoError(t, listener.Close())
	env["HOOKRELAY_ADDR"] = addr
	env["HOOKRELAY_ADMIN_TOKEN"] = adminToken
	env["HOOKRELAY_ALLOW_CIDRS"] = "127.0.0.1"
	serve := runImage(t, env, wait.ForLog("hookrelay serving"), "serve")

	_, err = store.Publish(ctx, &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u1"}})
	require.NoError(t, err)
	got := rec.waitFor(t, time.Minute, func(r []received) bool { return len(r) == 1 })
	require.Equal(t, 1, verifyStandardSignature(t, hook.SigningKey, got[0]))
	require.True(t, verifyLogtoSignature(hook.SigningKey, got[0]))

	code, _, err := serve.Exec(ctx, []string{"/hookrelay", "healthcheck"})
	require.NoError(t, err)
	require.Equal(t, 0, code, "the image's health check")
	inspect, err := exec.Command("docker", "image", "inspect", "-f", "{{.Config.User}} {{.Size}}", image).Output()
	require.NoError(t, err)
	var user string
	var size int64
	_, err = fmt.Sscan(string(inspect), &user, &size)
	require.NoError(t, err)
	require.Equal(t, "65532:65532", user, "not root")
	require.Less(t, size, int64(50<<20))
	resp, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestCompose runs compose.yaml with the tests' Postgres image: Postgres
// becomes healthy, migrate runs once and makes serve's role, serve becomes
// healthy as that role, no superuser, and answers on its published port.
func TestCompose(t *testing.T) {
	requireImage(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := listener.Addr().String()
	require.NoError(t, listener.Close())
	project := fmt.Sprintf("hookrelay_test_%d", time.Now().UnixNano()%1e9)
	pgImage := os.Getenv("HOOKRELAY_TEST_PG_IMAGE")
	if pgImage == "" {
		pgImage = "postgres:17"
	}
	// Only up needs the admin token: ps, logs and down in a new shell work
	// without it.
	composeWith := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("docker-compose", append([]string{"-p", project, "-f", filepath.Join("..", "compose.yaml")}, args...)...)
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(v string) bool {
			return strings.HasPrefix(v, "HOOKRELAY_ADMIN_TOKEN=") || strings.HasPrefix(v, "POSTGRES_PASSWORD=") ||
				strings.HasPrefix(v, "HOOKRELAY_SERVE_PASSWORD=")
		}),
			append(env, "POSTGRES_IMAGE="+pgImage, "HOOKRELAY_PORT="+port)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	compose := func(args ...string) (string, error) {
		return composeWith([]string{"HOOKRELAY_ADMIN_TOKEN=" + adminToken, "POSTGRES_PASSWORD=pg-" + project,
			"HOOKRELAY_SERVE_PASSWORD=serve-" + project}, args...)
	}
	t.Cleanup(func() { _, _ = compose("down", "-v", "--remove-orphans") })
	out, err := compose("up", "-d")
	require.NoError(t, err, out)

	require.Eventually(t, func() bool {
		status, err := exec.Command("docker", "inspect", "-f", "{{.State.Health.Status}}", project+"_hookrelay_1").Output()
		return err == nil && strings.TrimSpace(string(status)) == "healthy"
	}, 2*time.Minute, time.Second, "serve becomes healthy")
	ps, err := composeWith(nil, "ps")
	require.NoError(t, err, ps)
	require.Contains(t, ps, project+"_hookrelay_1")
	migrated, err := exec.Command("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", project+"_migrate_1").Output()
	require.NoError(t, err)
	require.Equal(t, "exited 0", strings.TrimSpace(string(migrated)))

	// serve runs as its own role, no superuser.
	role, err := exec.Command("docker", "exec", project+"_postgres_1", "psql", "-U", "postgres", "-d", "hookrelay", "-tAc",
		"SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename WHERE a.application_name = 'hookrelay process lock'").CombinedOutput()
	require.NoError(t, err, string(role))
	require.Equal(t, "hookrelay_serve|f", strings.TrimSpace(string(role)))

	req, err := http.NewRequest(http.MethodGet, "http://"+port+"/api/hooks", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
