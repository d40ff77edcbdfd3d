package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/hookrelay/hookrelay/integration/internal/pgtest"
)

// pg is the package's one Postgres container.
var pg *pgtest.Container

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stopHogs, err := startCPUHogs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopHogs()
	if pg, err = pgtest.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := pg.Terminate(); err != nil {
			fmt.Fprintln(os.Stderr, "terminate postgres container:", err)
		}
	}()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// startCPUHogs runs, for the package's tests, HOOKRELAY_TEST_CPU_HOGS
// processes that keep a core busy each (yes > /dev/null), as on a busy
// machine: CI runs the crash tests so too, since what a killed process held
// must come back within 10 s there as well.
func startCPUHogs() (stop func(), err error) {
	n, _ := strconv.Atoi(os.Getenv("HOOKRELAY_TEST_CPU_HOGS"))
	var hogs []*exec.Cmd
	stop = func() {
		for _, hog := range hogs {
			_ = hog.Process.Kill()
			_ = hog.Wait()
		}
	}
	for range n {
		hog := exec.Command("yes") // its output goes to the null device
		if err := hog.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start a CPU hog: %w", err)
		}
		hogs = append(hogs, hog)
	}
	return stop, nil
}

// goleakOptions ignore the goroutines of testcontainers' and net/http's
// long-lived clients, which outlive any one test by design.
var goleakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	goleak.IgnoreTopFunction("github.com/testcontainers/testcontainers-go.(*Reaper).connect.func1"),
}
