package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDemo runs `hookrelay demo` with a short workload: it starts a throwaway
// Postgres, delivers every event with verified signatures, and removes the
// cluster when it ends.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hookrelayBinary(t), "demo", "--events", "40", "--rate", "50", "--addr", "127.0.0.1:0")
	killGroupOnCancel(cmd)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	out := stdout.String()

	dir := regexp.MustCompile(`throwaway, in (\S+),`).FindStringSubmatch(out)
	require.NotNil(t, dir, out)
	require.NoDirExists(t, dir[1], "the throwaway cluster is removed")
	require.Regexp(t, `Console    http://127\.0\.0\.1:\d+/console/`, out)
	require.Regexp(t, `River UI   http://127\.0\.0\.1:\d+/riverui/`, out)

	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`published (\d+)  delivered (\d+)  retrying 0  failed 0  \(receiver: \d+ requests, \d+ failed on purpose, 0 bad signatures\)`).FindStringSubmatch(last)
	require.NotNil(t, m, last)
	require.NotEqual(t, "0", m[2], "something was delivered")
}
