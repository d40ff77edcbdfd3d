package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CPU time of processes, from /proc (Linux): the drain phase reports the
// CPU each process of the deployed shape spent per delivery.

// clockTicks is the unit of /proc's CPU times: USER_HZ, 100 on every Linux
// that Go supports.
const clockTicks = 100

// processStat is the CPU a process spent, its own and that of its waited-for
// children, and its parent.
type processStat struct {
	cpu, childrenCPU time.Duration
	parent           int
}

func readStat(pid int) (*processStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	end := strings.LastIndexByte(string(raw), ')')
	if end < 0 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(raw[end+1:]))
	if len(fields) < 15 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// fields[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	ticks := func(i int) time.Duration {
		n, _ := strconv.ParseInt(fields[i-3], 10, 64)
		return time.Duration(n) * time.Second / clockTicks
	}
	parent, _ := strconv.Atoi(fields[1])
	return &processStat{cpu: ticks(14) + ticks(15), childrenCPU: ticks(16) + ticks(17), parent: parent}, nil
}

// processCPU is the CPU time pid has spent.
func processCPU(pid int) (time.Duration, error) {
	stat, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return stat.cpu, nil
}

// postgresCPU reads the CPU time of a Postgres cluster's processes: the
// postmaster's, its live children's, and that of the children it reaped.
// It works when the cluster runs on this machine, in this PID namespace
// (hookrelay bench's own throwaway cluster does); otherwise ok is false.
type postgresCPU struct {
	postmaster int
}

func newPostgresCPU(ctx context.Context, pool *pgxpool.Pool) (*postgresCPU, bool) {
	var backend int
	var dataDir string
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('data_directory')").Scan(&backend, &dataDir); err != nil {
		return nil, false
	}
	stat, err := readStat(backend)
	if err != nil {
		return nil, false
	}
	// The postmaster works in the data directory: a process of another
	// namespace with the same number does not.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", stat.parent)); err != nil || filepath.Clean(cwd) != filepath.Clean(dataDir) {
		return nil, false
	}
	return &postgresCPU{postmaster: stat.parent}, true
}

func (p *postgresCPU) read() (time.Duration, error) {
	stat, err := readStat(p.postmaster)
	if err != nil {
		return 0, err
	}
	total := stat.cpu + stat.childrenCPU
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		child, err := readStat(pid)
		if err == nil && child.parent == p.postmaster {
			total += child.cpu
		}
	}
	return total, nil
}
