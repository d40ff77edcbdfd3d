package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRiverLogger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("WarnUnlessDebug", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		logger := riverLogger(slog.New(slog.NewTextHandler(&buf, nil)).With("service", "hookrelay"))
		logger.InfoContext(ctx, "Producer job counts")
		require.Empty(t, buf.String())
		logger.WithGroup("g").WarnContext(ctx, "stuck")
		require.Contains(t, buf.String(), "stuck")
		require.Contains(t, buf.String(), "service=hookrelay")
	})

	t.Run("AllAtDebug", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		logger := riverLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		logger.InfoContext(ctx, "Producer job counts")
		require.Contains(t, buf.String(), "Producer job counts")
	})
}
