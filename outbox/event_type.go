package outbox

import (
	"regexp"
	"strings"
)

// EventTypeMaxLength is the longest event type accepted.
const EventTypeMaxLength = 100

// eventTypeRE is the rule of the contract, shared with the SQL function
// publish: dotted PascalCase words such as User.Created or PostSignIn.
var eventTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$`)

// ValidateEventType returns a *ValidationError unless eventType is dotted
// PascalCase words (User.Created, PostSignIn, Invoice.Paid) of at most
// EventTypeMaxLength characters.
func ValidateEventType(eventType string) error {
	if len(eventType) > EventTypeMaxLength || !eventTypeRE.MatchString(eventType) {
		return invalid("event type", "%q: event types are dotted PascalCase words of at most %d characters, such as User.Created or PostSignIn%s",
			eventType, EventTypeMaxLength, suggestEventType(eventType))
	}
	return nil
}

// suggestEventType names the catalogue's type that eventType spells in
// another case, if any: "; did you mean User.Created?".
func suggestEventType(eventType string) string {
	for _, info := range Catalog {
		if strings.EqualFold(info.Type, eventType) {
			return "; did you mean " + info.Type + "?"
		}
	}
	return ""
}

// ValidateEventFilter returns a *ValidationError unless filter is an event
// type, a prefix wildcard such as User.* or the wildcard *.
func ValidateEventFilter(filter string) error {
	if filter == "*" {
		return nil
	}
	if prefix, ok := strings.CutSuffix(filter, ".*"); ok {
		if ValidateEventType(prefix) != nil {
			return invalid("event filter", "%q: a wildcard is an event type followed by .* (User.*) or * alone", filter)
		}
		return nil
	}
	if ValidateEventType(filter) != nil {
		return invalid("event filter", "%q: give an event type (User.Created), a prefix wildcard (User.*) or * for every event", filter)
	}
	return nil
}

// MatchEventFilter reports whether eventType is selected by filter: filter is
// the type itself, *, or Prefix.* where eventType starts with "Prefix.". *
// selects no operational event (IsOperational): a hook receives hookrelay's
// own events only when it names them (Hook.Disabled, Hook.*).
func MatchEventFilter(filter, eventType string) bool {
	if filter == eventType || filter == "*" && !IsOperational(eventType) {
		return true
	}
	prefix, ok := strings.CutSuffix(filter, "*")
	return ok && strings.HasSuffix(prefix, ".") && strings.HasPrefix(eventType, prefix)
}

// MatchEventFilters reports whether any of filters selects eventType.
func MatchEventFilters(filters []string, eventType string) bool {
	for _, filter := range filters {
		if MatchEventFilter(filter, eventType) {
			return true
		}
	}
	return false
}
