package outbox

import (
	"errors"
	"fmt"
)

var (
	// ErrHookNotFound is returned when no hook has the given ID.
	ErrHookNotFound = errors.New("hook not found")

	// ErrDeliveryNotFound is returned when no delivery has the given ID.
	ErrDeliveryNotFound = errors.New("delivery not found")

	// ErrEventNotFound is returned when no event has the given ID.
	ErrEventNotFound = errors.New("event not found")
)

// ValidationError reports input that hookrelay refuses, naming the field and
// what a valid value looks like. Nothing is written when one is returned.
type ValidationError struct {
	// Field is the input at fault, such as "url" or "event type".
	Field string

	// Reason says what is wrong and how to fix it.
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
