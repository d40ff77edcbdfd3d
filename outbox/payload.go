package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// reservedBodyKeys are the body's own keys, which an event's context never
// overrides.
var reservedBodyKeys = []string{"hookId", "event", "createdAt", "eventId", "data", "tenantId"}

// createdAtLayout is RFC 3339 in UTC with milliseconds, as Logto sends it.
const createdAtLayout = "2006-01-02T15:04:05.000Z"

// buildBody returns the webhook body in Logto's shape: the body's own keys,
// then the event's context keys in sorted order. The same event and hook
// always give the same bytes, so every attempt and replay signs the same body.
func buildBody(hookID string, event *dbsqlc.Event) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(256 + len(event.Data) + len(event.Context))
	buf.WriteString(`{"hookId":`)
	writeJSONString(&buf, hookID)
	buf.WriteString(`,"event":`)
	writeJSONString(&buf, event.Type)
	buf.WriteString(`,"createdAt":`)
	writeJSONString(&buf, event.CreatedAt.UTC().Format(createdAtLayout))
	buf.WriteString(`,"eventId":`)
	writeJSONString(&buf, event.ID)
	buf.WriteString(`,"data":`)
	if len(event.Data) == 0 {
		buf.WriteString("null")
	} else if err := json.Compact(&buf, event.Data); err != nil {
		return nil, fmt.Errorf("compact data of event %s: %w", event.ID, err)
	}
	if event.TenantID != nil {
		buf.WriteString(`,"tenantId":`)
		writeJSONString(&buf, *event.TenantID)
	}

	var eventContext map[string]json.RawMessage
	if err := json.Unmarshal(event.Context, &eventContext); err != nil {
		return nil, fmt.Errorf("decode context of event %s: %w", event.ID, err)
	}
	keys := make([]string, 0, len(eventContext))
	for key := range eventContext {
		if !slices.Contains(reservedBodyKeys, key) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		buf.WriteByte(',')
		writeJSONString(&buf, key)
		buf.WriteByte(':')
		if err := json.Compact(&buf, eventContext[key]); err != nil {
			return nil, fmt.Errorf("compact context of event %s: %w", event.ID, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	encoded, _ := json.Marshal(s) // a string always encodes
	buf.Write(encoded)
}
