package outbox

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SigningKeyPrefix starts every signing key, as in the Standard Webhooks
// spec.
const SigningKeyPrefix = "whsec_"

// NewSigningKey returns "whsec_" followed by base64 of 32 random bytes.
func NewSigningKey() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return SigningKeyPrefix + base64.StdEncoding.EncodeToString(key)
}

// errBadSigningKey never names the key, which is a secret.
var errBadSigningKey = errors.New("signing key is not whsec_ followed by base64")

// SignatureV1 returns one webhook-signature entry for the Standard Webhooks
// spec: "v1," + base64 HMAC-SHA256 of id + "." + timestamp + "." + body, keyed
// with the base64-decoded part of signingKey after "whsec_".
func SignatureV1(signingKey, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(signingKey, SigningKeyPrefix))
	if err != nil || !strings.HasPrefix(signingKey, SigningKeyPrefix) {
		return "", errBadSigningKey
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// SignatureLogto returns the logto-signature-sha-256 header value: hex
// HMAC-SHA256 of body keyed with the whole signing key string, as Logto signs.
func SignatureLogto(signingKey string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(signingKey))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignatureV1 reports whether the webhook-signature header value holds
// a valid v1 entry for signingKey, as a receiver checks it: id is the
// webhook-id header, timestamp the webhook-timestamp header. It does not
// check the timestamp's age; a receiver should refuse old ones.
func VerifySignatureV1(signingKey, id string, timestamp int64, body []byte, header string) bool {
	want, err := SignatureV1(signingKey, id, timestamp, body)
	if err != nil {
		return false
	}
	for _, entry := range strings.Fields(header) {
		if hmac.Equal([]byte(entry), []byte(want)) {
			return true
		}
	}
	return false
}

// SignedHeaders returns the headers hookrelay sets on a request of the
// delivery deliveryID to hook at time at, in the contract's names: the hook's
// custom headers, then Content-Type, User-Agent, webhook-id,
// webhook-timestamp, webhook-signature (one entry per key valid at at) and
// logto-signature-sha-256, which the custom ones cannot replace.
//
// One hex HMAC cannot carry two keys: during a rotation's overlap,
// logto-signature-sha-256 is made with the previous key, which receivers
// written for Logto still hold, and with the new one once the overlap ends.
// Standard Webhooks receivers verify either key meanwhile.
func SignedHeaders(hook *Hook, deliveryID string, at time.Time, body []byte) (http.Header, error) {
	header := http.Header{}
	for name, value := range hook.Headers {
		header.Set(name, value)
	}
	timestamp := at.Unix()
	keys := hook.SigningKeys(at)
	signatures := make([]string, len(keys))
	for i, key := range keys {
		var err error
		if signatures[i], err = SignatureV1(key, deliveryID, timestamp, body); err != nil {
			return nil, fmt.Errorf("sign delivery: %w", err)
		}
	}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", UserAgent)
	header.Set("webhook-id", deliveryID)
	header.Set("webhook-timestamp", strconv.FormatInt(timestamp, 10))
	header.Set("webhook-signature", strings.Join(signatures, " "))
	header.Set("logto-signature-sha-256", SignatureLogto(keys[len(keys)-1], body))
	return header, nil
}

// SentHeaders returns the headers of the attempt of the delivery made at
// time at, signatures as they were sent, for operators (the custom headers
// are the hook's current ones): false when the hook's key was rotated after
// at, so that the keys that signed it are no longer all known.
func SentHeaders(hook *Hook, deliveryID string, at time.Time, body []byte) (http.Header, bool) {
	if hook.KeyRotatedAt != nil && at.Before(*hook.KeyRotatedAt) {
		return nil, false
	}
	header, err := SignedHeaders(hook, deliveryID, at, body)
	return header, err == nil
}
