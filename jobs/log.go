package jobs

import (
	"context"
	"log/slog"
)

// riverLogger is the logger River gets: the service's, at WARN and above
// unless the service's logger is at DEBUG. River's INFO lines (producer job
// counts, "Job errored; retrying" for every failed attempt, which hookrelay
// records itself) are routine, not news.
func riverLogger(logger *slog.Logger) *slog.Logger {
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		return logger
	}
	return slog.New(&minLevelHandler{Handler: logger.Handler(), min: slog.LevelWarn})
}

// minLevelHandler drops records below min.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h *minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.Handler.Enabled(ctx, level)
}

func (h *minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &minLevelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h *minLevelHandler) WithGroup(name string) slog.Handler {
	return &minLevelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}
