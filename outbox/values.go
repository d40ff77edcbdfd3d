package outbox

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// nullable maps "" to NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// isUUID reports whether s has the textual form of a UUID, so that a
// malformed ID is "not found" instead of a database error.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// newUUIDv7 returns a UUID of version 7 (RFC 9562) for now, as text: 48 bits
// of Unix milliseconds, 12 bits of the millisecond's fraction (the RFC's
// method 3), and 62 random bits. It orders as the schema's uuid7() does, by
// the millisecond; PublishTx makes its events' IDs here, which costs the
// publisher's transaction less than uuid7() evaluated by Postgres.
func newUUIDv7(now time.Time) string {
	var u [16]byte
	ms := now.UnixMilli()
	var millis [8]byte
	binary.BigEndian.PutUint64(millis[:], uint64(ms)) //nolint:gosec // Unix milliseconds are positive
	copy(u[0:6], millis[2:])
	fraction := uint16(now.Sub(time.UnixMilli(ms)) * 4096 / time.Millisecond) //nolint:gosec // below 4096
	binary.BigEndian.PutUint16(u[6:8], 0x7000|fraction)
	_, _ = rand.Read(u[8:]) // never fails (crypto/rand)
	u[8] = 0x80 | u[8]&0x3f // the RFC's variant
	var text [36]byte
	hex.Encode(text[0:8], u[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], u[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], u[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], u[8:10])
	text[23] = '-'
	hex.Encode(text[24:36], u[10:16])
	return string(text[:])
}
