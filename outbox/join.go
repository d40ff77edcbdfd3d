package outbox

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// A running deliver job may take its hook's new deliveries, which then join
// it rather than get a job of their own (see schema/020_joins.up.sql): the
// job opens its hook's join with its token, the fan-out gives the deliveries
// it creates for the hook that token (HookDeliveries.JoinedJob), and the job
// closes the join before its run ends, loading what joined it at every run
// (LoadSends).

// OpenJoin has the job jobID, whose token is token, take hookID's new
// deliveries, and reports whether it does: another job may, and a deleted
// hook has none.
func (s *Store) OpenJoin(ctx context.Context, hookID, token string, jobID int64) (bool, error) {
	n, err := s.queries(s.pool).JoinOpen(ctx, &dbsqlc.JoinOpenParams{HookID: hookID, Token: token, JobID: jobID})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return false, nil
	}
	return n == 1, wrap(err, "open hook %s to joins", hookID)
}

// CloseJoin ends the joining of hookID's new deliveries to the job whose
// token is token: once it returns, none joins it, and a load sees all that
// did.
func (s *Store) CloseJoin(ctx context.Context, hookID, token string) error {
	err := s.queries(s.pool).JoinClose(ctx, &dbsqlc.JoinCloseParams{HookID: hookID, Token: token})
	return wrap(err, "close hook %s to joins", hookID)
}

// EndJoins ends, on db (the pool, or a transaction), the joining to the
// jobs whose tokens are given: jobs replaced, or gone.
func (s *Store) EndJoins(ctx context.Context, db DB, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	return wrap(s.queries(db).JoinEnd(ctx, tokens), "end the joins of %d jobs", len(tokens))
}

// JoinTokensTx returns the tokens of the jobs that take new deliveries, as tx
// sees them.
func (s *Store) JoinTokensTx(ctx context.Context, tx pgx.Tx) ([]string, error) {
	tokens, err := s.queries(tx).JoinListTokens(ctx)
	return tokens, wrap(err, "list joins")
}
