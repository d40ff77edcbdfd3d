package integration

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// childProcess runs a program of the project (hookrelay serve, an example
// application) as a process that listens on addr, to be killed and
// started again; its output goes to logPath.
type childProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	exited  chan struct{}
	binary  string
	args    []string
	env     []string
	addr    string
	logPath string
}

// startProcess starts binary with args and env, plus ADDR and HOOKRELAY_ADDR
// set to a free loopback port, and waits until it answers /healthz.
func startProcess(t *testing.T, binary string, env []string, args ...string) *childProcess {
	t.Helper()
	for _, kv := range env {
		require.Contains(t, kv, "=", "env holds NAME=value entries")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	require.NoError(t, listener.Close())
	p := &childProcess{
		t: t, binary: binary, args: args, addr: addr, logPath: filepath.Join(t.TempDir(), "log"),
		env: append(append(os.Environ(), "ADDR="+addr, "HOOKRELAY_ADDR="+addr), env...),
	}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *childProcess) start() {
	p.t.Helper()
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(p.t, err)
	defer log.Close()
	p.cmd = exec.Command(p.binary, p.args...)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = log, log
	require.NoError(p.t, p.cmd.Start())
	exited, cmd := make(chan struct{}), p.cmd
	p.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			return
		}
		select {
		case <-exited:
			deadline = time.Now()
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(p.logPath)
			p.t.Fatalf("%s did not come up: %v\n%s", p.binary, err, tail(string(out), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *childProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// startServe runs `hookrelay serve` against databaseURL with every setting at
// its default but the SSRF allow list (receivers are on loopback) and env.
func startServe(t *testing.T, databaseURL string, env ...string) *childProcess {
	t.Helper()
	return startProcess(t, hookrelayBinary(t), append([]string{
		"DATABASE_URL=" + databaseURL,
		"HOOKRELAY_ADMIN_TOKEN=" + adminToken,
		"HOOKRELAY_ALLOW_CIDRS=127.0.0.1",
	}, env...), "serve")
}
