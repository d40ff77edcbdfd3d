package integration

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/jobs"
)

// TestBench runs a tiny `hookrelay bench --json` to prove every phase works;
// it asserts no speed. It runs alone, before the package's parallel tests:
// beside them all on two busy cores, a phase's wait for its deliveries
// (two minutes for the flaky neighbour's) was seen to run out.
func TestBench(t *testing.T) {
	url := pg.NewEmptyDatabase(t)
	res := runCLI(t, url, "bench", "--events", "300", "--hooks", "2", "--writers", "4", "--rate", "200", "--duration", "1s", "--json")
	require.Equal(t, 0, res.code, res.stderr)

	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	for _, key := range []string{"river_noop_jobs_per_s", "river_wal_bytes_per_job", "deliveries_per_s", "ratio", "publish_overhead",
		"peak_rss_bytes", "postgres_bytes_per_event", "wal_ratio", "fan_out_us_per_delivery", "fan_out_filtered_us_per_delivery"} {
		require.Greater(t, out[key].(float64), 0.0, key)
	}
	latency := out["latency_ms"].(map[string]any)
	for _, phase := range []string{"go", "sql", "beside_hanging_hook"} {
		p := latency[phase].(map[string]any)
		require.Equal(t, 200.0, p["n"], "every offered delivery of the %s phase was measured", phase)
		require.Greater(t, p["p99"].(float64), 0.0)
	}
	require.Equal(t, 20.0, latency["wake"].(map[string]any)["n"], "10 quiet spells × 2 hooks")
	rate := out["rate_limit"].(map[string]any)
	require.Equal(t, 300.0, rate["events"])
	require.Greater(t, rate["drained_per_s"].(float64), 0.0)
	require.LessOrEqual(t, rate["busiest_second"].(float64), 55.0, "50/s, and the jitter TestRateLimitAcrossProcesses allows")
	require.Equal(t, 200.0, rate["below_limit_latency_ms"].(map[string]any)["n"])
	for _, name := range []string{"drain", "drain_https"} {
		drain := out[name].(map[string]any)
		for _, key := range []string{"deliveries_per_s", "ratio", "wal_bytes_per_delivery", "database_bytes_per_event",
			"serve_cpu_us_per_delivery", "receiver_cpu_us_per_delivery", "connections", "connections_per_1000_deliveries"} {
			require.Greater(t, drain[key].(float64), 0.0, name+" "+key)
		}
		// serve's connections and the bench's own, which reads the counts.
		require.LessOrEqual(t, drain["connections"].(float64), float64(jobs.HostConcurrencyDefault+1), name)
	}
	https := out["drain_https"].(map[string]any)
	require.Equal(t, https["connections"], https["tls_handshakes"], "every connection to the HTTPS receiver is a handshake")
	require.Equal(t, 0.0, out["drain"].(map[string]any)["tls_handshakes"])
}

// TestBenchSoak runs a short soak: every offered delivery measured, the
// tables sampled as they fill.
func TestBenchSoak(t *testing.T) {
	url := pg.NewEmptyDatabase(t)
	res := runCLI(t, url, "bench", "--soak", "5s", "--rate", "100", "--json")
	require.Equal(t, 0, res.code, res.stderr)

	var out struct {
		Latency              struct{ N int } `json:"latency_ms"`
		RiverJobsPerDelivery float64         `json:"river_jobs_per_delivery"`
		Samples              []struct {
			Events     int64 `json:"events"`
			Deliveries int64 `json:"deliveries"`
			RiverJobs  int64 `json:"river_jobs"`
			Bytes      int64 `json:"bytes"`
		} `json:"samples"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	require.Equal(t, 500, out.Latency.N, "50 events a second to 2 hooks for 5 s")
	require.Greater(t, out.RiverJobsPerDelivery, 0.0)
	require.LessOrEqual(t, out.RiverJobsPerDelivery, 2.0)
	require.GreaterOrEqual(t, len(out.Samples), 19, "a sample every 250 ms")
	last := out.Samples[len(out.Samples)-1]
	require.Greater(t, last.Events, out.Samples[0].Events)
	require.LessOrEqual(t, last.Deliveries, 2*last.Events, "each event fanned out to its 2 hooks, or not yet")
	require.Positive(t, last.RiverJobs)
	require.Positive(t, last.Bytes)
}
