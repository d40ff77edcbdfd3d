// Package outbox is hookrelay's library: the transactional outbox that an
// identity system writes hook events into, and the store of hooks,
// deliveries and their attempts.
//
// # Publishing
//
// An event is written in the same transaction as the change it describes,
// with Store.PublishTx, so it exists if and only if that transaction
// commits:
//
//	store, err := outbox.NewStore(pool, nil)
//	…
//	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		if _, err := tx.Exec(ctx, "UPDATE users SET email = $2 WHERE id = $1", id, email); err != nil {
//			return err
//		}
//		_, err := store.PublishTx(ctx, tx, outbox.UserDataUpdated(&outbox.User{ID: id, PrimaryEmail: email}))
//		return err
//	})
//
// Writers in other languages call the SQL function hookrelay.publish in their
// own transaction; triggers installed with Store.InstallCapture publish from
// an existing table's changes.
//
// # Events
//
// Catalog lists Logto's events; the builders (UserCreated, PostSignIn,
// OrganizationMembershipUpdated, …) make them in Logto's shape. Custom dotted
// PascalCase types are allowed too (ValidateEventType).
//
// # Hooks and deliveries
//
// A hook subscribes a URL to event filters (User.Created, User.*, *). The
// jobs package fans each event out to one delivery per matching hook and
// sends it signed (SignatureV1, SignatureLogto); receivers written in Go can
// check the signature with VerifySignatureV1.
//
// # Schema
//
// Every table, River's included, lives in one Postgres schema (SchemaDefault
// unless Config.Schema says otherwise); Store.Migrate creates and migrates
// it.
package outbox
