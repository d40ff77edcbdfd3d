package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// hookrelayBinary builds cmd/hookrelay once per test run.
func hookrelayBinary(t *testing.T) string {
	t.Helper()
	return buildBinary(t, "github.com/hookrelay/hookrelay/cmd/hookrelay")
}

var (
	binariesMu sync.Mutex
	binaries   = map[string]string{}
)

// buildBinary builds the command pkg once per test run.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	binariesMu.Lock()
	defer binariesMu.Unlock()
	if path, ok := binaries[pkg]; ok {
		return path
	}
	dir, err := os.MkdirTemp("", "hookrelay-bin")
	require.NoError(t, err)
	path := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, out)
	binaries[pkg] = path
	return path
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the hookrelay binary against databaseURL.
func runCLI(t *testing.T, databaseURL string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hookrelayBinary(t), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	url := pg.NewEmptyDatabase(t)

	require.Equal(t, 1, runCLI(t, url, "hooks", "list").code, "an unmigrated database is an error")
	for range 2 {
		res := runCLI(t, url, "migrate")
		require.Equal(t, 0, res.code, res.stderr)
	}

	create := runCLI(t, url, "hooks", "create", "--url", "https://example.com/hook", "--event", "User.*", "--event", "PostSignIn",
		"--name", "crm", "--header", "Authorization: Bearer abc", "--tenant", "t1")
	require.Equal(t, 0, create.code, create.stderr)
	var hook outbox.Hook
	require.NoError(t, json.Unmarshal([]byte(create.stdout), &hook))
	require.Equal(t, "crm", hook.Name)
	require.Equal(t, []string{"User.*", "PostSignIn"}, hook.Events)
	require.Equal(t, map[string]string{"Authorization": "Bearer abc"}, hook.Headers)
	require.True(t, hook.Enabled)
	require.True(t, strings.HasPrefix(hook.SigningKey, "whsec_"))

	show := runCLI(t, url, "hooks", "show", hook.ID, "--reveal-key")
	require.Equal(t, 0, show.code, show.stderr)
	require.JSONEq(t, create.stdout, show.stdout)
	// Keys are shown on creation and on request only.
	redacted := runCLI(t, url, "hooks", "show", hook.ID)
	require.NotContains(t, redacted.stdout, hook.SigningKey)
	require.Contains(t, redacted.stdout, `"signingKey": "whsec_****`+hook.SigningKey[len(hook.SigningKey)-4:]+`"`)

	update := runCLI(t, url, "hooks", "update", hook.ID, "--event", "*")
	require.Equal(t, 0, update.code, update.stderr)
	var updated outbox.Hook
	require.NoError(t, json.Unmarshal([]byte(update.stdout), &updated))
	require.Equal(t, []string{"*"}, updated.Events)
	require.Equal(t, "crm", updated.Name, "unset flags leave settings alone")

	disable := runCLI(t, url, "hooks", "disable", hook.ID)
	require.Equal(t, 0, disable.code, disable.stderr)
	require.Contains(t, disable.stdout, `"enabled": false`)
	enable := runCLI(t, url, "hooks", "enable", hook.ID)
	require.Contains(t, enable.stdout, `"enabled": true`)

	rotate := runCLI(t, url, "hooks", "rotate-key", hook.ID, "--overlap", "1h", "--reveal-key")
	require.Equal(t, 0, rotate.code, rotate.stderr)
	var rotated outbox.Hook
	require.NoError(t, json.Unmarshal([]byte(rotate.stdout), &rotated))
	require.Equal(t, hook.SigningKey, rotated.PreviousSigningKey)

	list := runCLI(t, url, "hooks", "list")
	var hooks []outbox.Hook
	require.NoError(t, json.Unmarshal([]byte(list.stdout), &hooks))
	require.Len(t, hooks, 1)
	require.NotContains(t, list.stdout, rotated.SigningKey)
	require.NotContains(t, list.stdout, hook.SigningKey)
	list = runCLI(t, url, "hooks", "list", "--reveal-keys")
	require.Contains(t, list.stdout, rotated.SigningKey)

	publish := runCLI(t, url, "publish", "--event", "User.Created", "--data", `{"id":"u1"}`, "--context", `{"ip":"203.0.113.1"}`, "--tenant", "t1")
	require.Equal(t, 0, publish.code, publish.stderr)
	eventID := strings.TrimSpace(publish.stdout)
	require.Len(t, eventID, 36)

	deliveries := runCLI(t, url, "deliveries", "list", "--hook", hook.ID, "--status", "pending")
	require.Equal(t, 0, deliveries.code, deliveries.stderr)
	require.JSONEq(t, "[]", deliveries.stdout, "nothing is fanned out without serve")

	del := runCLI(t, url, "hooks", "delete", hook.ID)
	require.Equal(t, 0, del.code, del.stderr)
	require.Equal(t, 1, runCLI(t, url, "hooks", "show", hook.ID).code)

	t.Run("Errors", func(t *testing.T) {
		for _, tt := range []struct {
			args    []string
			code    int
			wantErr string
		}{
			{[]string{"nope"}, 2, "unknown command"},
			{[]string{"hooks"}, 2, "needs a subcommand"},
			{[]string{"hooks", "create", "--url", "https://example.com"}, 2, "at least one --event"},
			{[]string{"hooks", "create", "--url", "ftp://example.com", "--event", "*"}, 1, "scheme must be http or https"},
			{[]string{"hooks", "create", "--url", "example.com/hooks", "--event", "*"}, 1, "scheme must be http or https, as in https://example.com/hooks"},
			{[]string{"hooks", "create", "--url", "localhost:9000/hooks", "--event", "*"}, 1, "scheme must be http or https"},
			{[]string{"hooks", "create", "--url", "https://example.com", "--event", "user.created"}, 1, "invalid event filter"},
			{[]string{"hooks", "create", "--url", "https://example.com", "--event", "*", "--header", "X-A: 1", "--header", "x-a: 2"}, 2, `invalid --header: duplicate "x-a"`},
			{[]string{"hooks", "create", "--url", "https://example.com", "--event", "*", "--header", "Webhook-Id: 1"}, 1, "cannot be replaced"},
			{[]string{"hooks", "show"}, 2, "takes one ID"},
			{[]string{"hooks", "show", "00000000-0000-0000-0000-000000000000"}, 1, "hook not found: 00000000-0000-0000-0000-000000000000"},
			{[]string{"deliveries", "replay", "nope"}, 1, "delivery not found: nope"},
			{[]string{"deliveries", "replay", "00000000-0000-0000-0000-000000000000"}, 1, "delivery not found: 00000000-0000-0000-0000-000000000000"},
			{[]string{"hooks", "create", "--bogus"}, 2, "flag provided but not defined"},
			{[]string{"publish", "--event", "bad type"}, 1, "dotted PascalCase"},
			{[]string{"publish", "--event", "User.Created", "--data", "{"}, 2, "not JSON"},
			{[]string{"publish", "--event", "User.Created", "--context", "[1]"}, 2, "JSON object"},
			{[]string{"deliveries", "list", "--status", "weird"}, 1, "invalid status"},
			{[]string{"deliveries", "replay"}, 2, "takes a delivery ID"},
			{[]string{"deliveries", "replay", "--hook", hook.ID, "--since", "yesterday"}, 2, "RFC 3339"},
			{[]string{"serve"}, 2, "admin token"},
			{[]string{"serve", "--admin-token", "x", "--retry-schedule", "soon"}, 2, "invalid retry schedule"},
			{[]string{"publish", "--event", "User.Created", "--max-payload-bytes", "10", "--data", `"0123456789"`}, 1, "too large"},
		} {
			res := runCLI(t, url, tt.args...)
			require.Equal(t, tt.code, res.code, "%v: %s", tt.args, res.stderr)
			require.Contains(t, res.stderr, tt.wantErr, tt.args)
			require.Equal(t, 1, strings.Count(res.stderr, "\n"), "one line: %q", res.stderr)
		}
	})

	t.Run("Help", func(t *testing.T) {
		for _, args := range [][]string{{"hooks", "create", "-h"}, {"deliveries", "list", "--help"}, {"serve", "-h"}} {
			res := runCLI(t, url, args...)
			require.Equal(t, 0, res.code, "%v: %s", args, res.stderr)
			require.Empty(t, res.stderr)
			require.Contains(t, res.stdout, "usage: hookrelay "+strings.Join(args[:len(args)-1], " "))
			require.Contains(t, res.stdout, "--database-url")
			require.Contains(t, res.stdout, "(HOOKRELAY_SCHEMA) (default hookrelay)")
			require.True(t, strings.HasSuffix(res.stdout, "\n"))
		}
		require.Contains(t, runCLI(t, url, "hooks", "create", "-h").stdout, "--url")
	})
}

// TestCLIHooksTest: hooks test is sent by the workers of a running serve,
// through their SSRF guard (the CLI's environment allows nothing), and
// exits non-zero with the receiver's answer when it fails.
func TestCLIHooksTest(t *testing.T) {
	t.Parallel()
	bundle := setupStore(t)
	url := bundle.pool.Config().ConnString()
	ok := newReceiver(t, nil)
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	okHook := bundle.createHook(t, ok.URL, "*")
	failingHook := bundle.createHook(t, failing.URL, "*")
	startServe(t, url)

	res := runCLI(t, url, "hooks", "test", okHook.ID)
	require.Equal(t, 0, res.code, res.stderr)
	var sent outbox.Delivery
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &sent))
	require.Equal(t, outbox.DeliverySucceeded, sent.Status)
	require.Len(t, ok.all(), 1)

	res = runCLI(t, url, "hooks", "test", failingHook.ID, "--event", "User.Deleted")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "failed: the receiver answered 500")
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &sent))
	require.Equal(t, outbox.DeliveryFailed, sent.Status)
	require.Len(t, failing.all(), 1)
}
