package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealthLogsChangesOncePerSpell(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	h := newHealth(slog.New(slog.NewTextHandler(&out, nil)))
	ctx := context.Background()
	lines := func() []string {
		defer out.Reset()
		return strings.FieldsFunc(out.String(), func(r rune) bool { return r == '\n' })
	}

	h.note(ctx, "a", 0, true, "")
	require.Empty(t, lines(), "an answering hook is not news")

	h.note(ctx, "a", 3, false, "receiver answered 500")
	got := lines()
	require.Len(t, got, 1)
	require.Contains(t, got[0], "level=WARN msg=\"hook failing")
	require.Contains(t, got[0], "failed_attempts=3")
	require.Contains(t, got[0], "last_failure=\"receiver answered 500\"")

	h.note(ctx, "a", 2, false, "timeout")
	require.Empty(t, lines(), "still failing")

	h.note(ctx, "a", 1, true, "")
	got = lines()
	require.Len(t, got, 1)
	require.Contains(t, got[0], "level=INFO msg=\"hook answers again\"")
	require.Contains(t, got[0], "failed_attempts=6")

	// A hook that flaps is logged failing once per healthLogEvery, and
	// answering again only after a spell that was logged.
	h.note(ctx, "a", 1, false, "timeout")
	h.note(ctx, "a", 0, true, "")
	require.Empty(t, lines())

	h.note(ctx, "b", 1, false, "timeout")
	require.Len(t, lines(), 1, "each hook has its own")
}
