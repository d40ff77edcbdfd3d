package integration

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
)

// BenchmarkSupabaseTransactions measures what the Supabase preset costs
// Supabase Auth's transactions, without the preset and with it: a sign-in
// (a session, then the user's and its identity's last_sign_in_at: one
// PostSignIn) and a profile update (one User.Data.Updated, with the user
// read back at commit with its identities).
//
//	go test -run '^$' -bench SupabaseTransactions -benchtime 3000x ./integration
func BenchmarkSupabaseTransactions(b *testing.B) {
	const user = "0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11"
	for _, tt := range []struct {
		name       string
		install    bool
		statements []string
	}{
		{"SignIn/WithoutPreset", false, nil},
		{"SignIn/WithPreset", true, nil},
		{"ProfileUpdate/WithoutPreset", false, []string{`UPDATE auth.users SET raw_user_meta_data = jsonb_build_object('n', $1::int) WHERE id = '` + user + `'`}},
		{"ProfileUpdate/WithPreset", true, []string{`UPDATE auth.users SET raw_user_meta_data = jsonb_build_object('n', $1::int) WHERE id = '` + user + `'`}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ctx := context.Background()
			bundle, _ := setupSupabase(b)
			if tt.install {
				preset, _, err := capture.BuiltIn("supabase")
				require.NoError(b, err)
				_, err = capture.New(bundle.store).InstallPreset(ctx, preset, nil)
				require.NoError(b, err)
			}
			_, err := bundle.pool.Exec(ctx, `INSERT INTO auth.users (id, email) VALUES ('`+user+`', 'ann@example.com');
				INSERT INTO auth.identities (provider_id, user_id, identity_data, provider) VALUES ('`+user+`', '`+user+`', '{}', 'email')`)
			require.NoError(b, err)
			b.ResetTimer()
			for i := range b.N {
				err := pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
					if tt.statements != nil {
						_, err := tx.Exec(ctx, tt.statements[0], i)
						return err
					}
					if _, err := tx.Exec(ctx, `INSERT INTO auth.sessions (id, user_id, created_at) VALUES (gen_random_uuid(), '`+user+`', now())`); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `UPDATE auth.users SET last_sign_in_at = now(), updated_at = now() WHERE id = '`+user+`'`); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `UPDATE auth.identities SET last_sign_in_at = now() WHERE user_id = '`+user+`'`)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
