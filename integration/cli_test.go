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
	"syscall"
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
	return runCLIWith(t, []string{"DATABASE_URL=" + databaseURL}, "", args...)
}

// cliTimeout bounds a command of the CLI: the bench's runs for minutes on a
// busy machine.
const cliTimeout = 5 * time.Minute

// runCLIWith runs the hookrelay binary with env added to the test's
// environment and stdin as its input. A command still running at cliTimeout
// is killed with the processes it started (the bench's serve and
// receiver).
func runCLIWith(t *testing.T, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, hookrelayBinary(t), args...)
	killGroupOnCancel(cmd)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
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

// killGroupOnCancel makes cmd, when its context ends, kill the processes it
// started too, and not wait for ever on output they still hold.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
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
	require.Equal(t, outbox.OrderingNone, updated.Ordering)
	ordered := runCLI(t, url, "hooks", "update", hook.ID, "--ordering", "subject")
	require.Equal(t, 0, ordered.code, ordered.stderr)
	require.Contains(t, ordered.stdout, `"ordering": "subject"`)

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

	// rotate-key shows the new key, which is what it is for, and no other.
	rotate = runCLI(t, url, "hooks", "rotate-key", hook.ID)
	require.Equal(t, 0, rotate.code, rotate.stderr)
	var rotatedAgain outbox.Hook
	require.NoError(t, json.Unmarshal([]byte(rotate.stdout), &rotatedAgain))
	require.True(t, strings.HasPrefix(rotatedAgain.SigningKey, "whsec_") && !strings.Contains(rotatedAgain.SigningKey, "****"))
	require.NotContains(t, rotate.stdout, rotated.SigningKey)
	require.NotContains(t, rotate.stdout, "Bearer abc")

	publish := runCLI(t, url, "publish", "--event", "User.Created", "--data", `{"id":"u1"}`, "--context", `{"ip":"203.0.113.1"}`, "--tenant", "t1", "--subject", "user:u1")
	require.Equal(t, 0, publish.code, publish.stderr)
	eventID := strings.TrimSpace(publish.stdout)
	require.Len(t, eventID, 36)
	shown := runCLI(t, url, "events", "show", eventID)
	require.Equal(t, 0, shown.code, shown.stderr)
	require.Contains(t, shown.stdout, `"subject": "user:u1"`)

	t.Run("Events", func(t *testing.T) {
		// Payloads past a command line's limit come from a file or stdin.
		big := `{"id":"u2","bio":"` + strings.Repeat("b", 200<<10) + `"}`
		file := filepath.Join(t.TempDir(), "data.json")
		require.NoError(t, os.WriteFile(file, []byte(big), 0o600))
		res := runCLIWith(t, []string{"DATABASE_URL=" + url}, `{"ip":"203.0.113.2"}`,
			"publish", "--event", "User.Created", "--data", "@"+file, "--context", "-")
		require.Equal(t, 0, res.code, res.stderr)
		bigID := strings.TrimSpace(res.stdout)

		res = runCLI(t, url, "events", "list", "--type", "User.Created")
		require.Equal(t, 0, res.code, res.stderr)
		var listed []outbox.EventSummary
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &listed))
		require.Len(t, listed, 2)
		require.Equal(t, []string{bigID, eventID}, []string{listed[0].ID, listed[1].ID}, "newest first")

		res = runCLI(t, url, "events", "show", bigID)
		require.Equal(t, 0, res.code, res.stderr)
		var shown outbox.StoredEvent
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &shown))
		require.JSONEq(t, big, string(shown.Data))
		require.JSONEq(t, `{"ip":"203.0.113.2"}`, string(shown.Context))

		// A near miss of the catalogue is refused until registered.
		res = runCLI(t, url, "publish", "--event", "User.Craeted")
		require.Equal(t, 1, res.code)
		require.Contains(t, res.stderr, "did you mean User.Created? A custom type this close to the catalogue's must be registered first: hookrelay events register User.Craeted")
		res = runCLI(t, url, "events", "register", "User.Craeted")
		require.Equal(t, 0, res.code, res.stderr)
		require.Equal(t, 0, runCLI(t, url, "publish", "--event", "User.Craeted").code)
		res = runCLI(t, url, "events", "types")
		var types []outbox.KnownEventType
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &types))
		require.Len(t, types, len(outbox.Catalog)+1)
		require.Equal(t, "User.Craeted", types[len(types)-1].Name)
		require.False(t, types[len(types)-1].Catalogue)

		res = runCLI(t, url, "events")
		require.Equal(t, 0, res.code, res.stderr)
		var catalogue []outbox.EventInfo
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &catalogue))
		require.Equal(t, outbox.Catalog, catalogue)
	})

	t.Run("Version", func(t *testing.T) {
		res := runCLI(t, url, "version")
		require.Equal(t, 0, res.code, res.stderr)
		require.True(t, strings.HasPrefix(res.stdout, "hookrelay "+outbox.Version+" go"), res.stdout)
	})

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
			{[]string{"hooks", "create", "--url", "127.0.0.1:9911/x", "--event", "*"}, 1, "scheme must be http or https"},
			{[]string{"hooks", "create", "--url", "https://example.com", "--event", "Usr.*"}, 1, "did you mean User.*?"},
			{[]string{"hooks", "create", "--url", "https://example.com", "--event", "User.Deleted", "--event", "User.Craeted2"}, 1, "did you mean User.Created?"},
			{[]string{"publish", "--event", "PostSignin"}, 1, "did you mean PostSignIn?"},
			{[]string{"hooks", "create", "--url", "https://example.com", "--event", "*", "--ordering", "fifo"}, 1, `invalid ordering: "fifo"; it is "subject" or "none"`},
			{[]string{"publish", "--event", "User.Created", "--subject", strings.Repeat("s", 257)}, 1, "invalid subject: 257 bytes; at most 256"},
			{[]string{"publish", "--event", "User.Created", "--data", "@/nonexistent/data.json"}, 2, "no such file"},
			{[]string{"publish", "--event", "User.Created", "--data", "-", "--context", "-"}, 2, "not both"},
			{[]string{"deliveries", "replay", "--hook", hook.ID, "--since", "2026-01-02T15:04:05Z", "--status", "pending"}, 1, "replay failed (the default), succeeded, canceled or all"},
			{[]string{"events", "nope"}, 2, "unknown command"},
			{[]string{"events", "register"}, 2, "custom event types to register"},
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

		for _, args := range [][]string{{"hooks", "-h"}, {"deliveries", "--help"}, {"events", "-h"}, {"capture", "help"}} {
			res := runCLI(t, url, args...)
			require.Equal(t, 0, res.code, "%v: %s", args, res.stderr)
			require.Empty(t, res.stderr)
			for line := range strings.Lines(strings.TrimSpace(res.stdout)) {
				if strings.HasPrefix(line, "  ") {
					require.True(t, strings.HasPrefix(line, "  hookrelay "+args[0]), "%v: %q", args, line)
				}
			}
		}
		require.Contains(t, runCLI(t, url, "help").stdout, "--preset logto|supabase")
	})

	t.Run("HelpShowsNoSecret", func(t *testing.T) {
		const token, password, queryPassword = "admin-token-f00dcafe", "db-pass-c0ffee42", "query-pass-5ca1ab1e"
		env := []string{
			"DATABASE_URL=postgres://app:" + password + "@127.0.0.1:1/auth?password=" + queryPassword,
			"HOOKRELAY_ADMIN_TOKEN=" + token,
		}
		for _, args := range [][]string{{"hooks", "list", "-h"}, {"serve", "-h"}, {"publish", "--help"}} {
			res := runCLIWith(t, env, "", args...)
			require.Equal(t, 0, res.code, "%v: %s", args, res.stderr)
			require.Contains(t, res.stdout, "postgres://app:xxxxx@127.0.0.1:1/auth")
			for _, secret := range []string{token, password, queryPassword} {
				require.NotContains(t, res.stdout, secret, args)
			}
		}
		res := runCLIWith(t, []string{"DATABASE_URL=host=127.0.0.1 password=" + password}, "", "hooks", "list", "-h")
		require.Equal(t, 0, res.code, res.stderr)
		require.NotContains(t, res.stdout, password, "key=value settings")
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
	require.Contains(t, string(ok.all()[0].Body), `"event":"PostSignIn"`)

	// Without --event, the sample is a type the hook receives.
	membershipHook := bundle.createHook(t, ok.URL, "Organization.Membership.*")
	res = runCLI(t, url, "hooks", "test", membershipHook.ID)
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, string(ok.all()[1].Body), `"event":"Organization.Membership.Updated"`)

	res = runCLI(t, url, "hooks", "test", failingHook.ID, "--event", "User.Deleted")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "failed: the receiver answered 500")
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &sent))
	require.Equal(t, outbox.DeliveryFailed, sent.Status)
	require.Len(t, failing.all(), 1)
}
