package integration

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
)

// BenchmarkFanOutFilters measures the fan-out of events to 100 hooks, each
// with a filter that the events pass and without one: the time per
// delivery made (b.N is the events; each makes 100 deliveries).
//
//	go test -run '^$' -bench FanOutFilters -benchtime 2000x ./integration
func BenchmarkFanOutFilters(b *testing.B) {
	for _, filter := range []string{"", `$.data.organizationId == "org_1"`} {
		name := map[bool]string{true: "Unfiltered", false: "Filtered"}[filter == ""]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			bundle := setupStore(b)
			for i := range 100 {
				_, err := bundle.store.CreateHook(ctx, &outbox.HookParams{URL: fmt.Sprintf("https://hooks.example.com/%d", i), Events: []string{"*"}, Filter: filter})
				require.NoError(b, err)
			}
			_, err := bundle.pool.Exec(ctx, `SELECT hookrelay.publish('User.Created', '{"organizationId": "org_1", "name": "Ann"}') FROM generate_series(1, $1)`, b.N)
			require.NoError(b, err)
			b.ResetTimer()
			deliveries := 0
			for {
				var res *outbox.FanOutResult
				require.NoError(b, pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
					res, err = bundle.store.FanOutTx(ctx, tx, 100)
					return err
				}))
				if res.Events == 0 {
					break
				}
				for _, group := range res.Deliveries {
					deliveries += len(group.DeliveryIDs)
				}
			}
			b.StopTimer()
			require.Equal(b, 100*b.N, deliveries)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(deliveries), "µs/delivery")
		})
	}
}
