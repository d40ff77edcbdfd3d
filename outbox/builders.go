package outbox

import (
	"encoding/json"
	"time"
)

// The builders below make events in Logto's shape, so that callers never
// hand-write JSON: the entity goes under "data", interaction details at the
// top level of the body.

// User is the user entity of data events. Unknown fields go in CustomData.
type User struct {
	ID           string         `json:"id"`
	Username     string         `json:"username,omitempty"`
	PrimaryEmail string         `json:"primaryEmail,omitempty"`
	PrimaryPhone string         `json:"primaryPhone,omitempty"`
	Name         string         `json:"name,omitempty"`
	Avatar       string         `json:"avatar,omitempty"`
	CustomData   map[string]any `json:"customData,omitempty"`
	IsSuspended  bool           `json:"isSuspended"`
	CreatedAt    *time.Time     `json:"createdAt,omitempty"`
	UpdatedAt    *time.Time     `json:"updatedAt,omitempty"`
}

// MarshalJSON writes the user as Logto does, timestamps as Unix
// milliseconds: the same shape as the Logto preset's captured users.
func (u User) MarshalJSON() ([]byte, error) {
	type plain User // without this method
	millis := func(t *time.Time) *int64 {
		if t == nil {
			return nil
		}
		ms := t.UnixMilli()
		return &ms
	}
	return json.Marshal(struct {
		plain
		CreatedAt *int64 `json:"createdAt,omitempty"`
		UpdatedAt *int64 `json:"updatedAt,omitempty"`
	}{plain(u), millis(u.CreatedAt), millis(u.UpdatedAt)})
}

// Role is a role of role-based access control.
type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Type is User or MachineToMachine.
	Type string `json:"type,omitempty"`
}

// Scope is a permission of an API resource, or of organizations.
type Scope struct {
	ID          string `json:"id"`
	ResourceID  string `json:"resourceId,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Organization is a tenant-like group of users and applications.
type Organization struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	CustomData  map[string]any `json:"customData,omitempty"`
}

// OrganizationRole is a role within organizations.
type OrganizationRole struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Application is the client an interaction came from.
type Application struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// Interaction describes a finished sign-in experience flow.
type Interaction struct {
	// Event is the flow: Register, SignIn or ForgotPassword.
	Event       string
	SessionID   string
	UserID      string
	User        *User
	Application *Application
	// IP is the client's address; sent as userIp (Logto) and ip.
	IP        string
	UserAgent string
}

func (i *Interaction) context() map[string]any {
	c := map[string]any{"interactionEvent": i.Event}
	putIf(c, "sessionId", i.SessionID)
	putIf(c, "userId", i.UserID)
	putIf(c, "userIp", i.IP)
	putIf(c, "ip", i.IP)
	putIf(c, "userAgent", i.UserAgent)
	if i.User != nil {
		c["user"] = i.User
		if i.UserID == "" {
			c["userId"] = i.User.ID
		}
	}
	if i.Application != nil {
		c["applicationId"] = i.Application.ID
		c["application"] = i.Application
	}
	return c
}

func putIf(m map[string]any, key, value string) {
	if value != "" {
		m[key] = value
	}
}

// PostRegister is published when a user finishes registering.
func PostRegister(i *Interaction) *Event { return interactionEvent(EventPostRegister, "Register", i) }

// PostSignIn is published when a user finishes signing in.
func PostSignIn(i *Interaction) *Event { return interactionEvent(EventPostSignIn, "SignIn", i) }

// PostResetPassword is published when a user finishes resetting a password.
func PostResetPassword(i *Interaction) *Event {
	return interactionEvent(EventPostResetPassword, "ForgotPassword", i)
}

// PostSignInAdaptiveMfaTriggered is published when a risky sign-in asks for
// an extra factor; reason says why.
func PostSignInAdaptiveMfaTriggered(i *Interaction, reason string) *Event {
	event := interactionEvent(EventPostSignInAdaptiveMfaTriggered, "SignIn", i)
	event.Data = map[string]any{"reason": reason}
	return event
}

func interactionEvent(eventType, defaultFlow string, i *Interaction) *Event {
	c := *i
	if c.Event == "" {
		c.Event = defaultFlow
	}
	return &Event{Type: eventType, Context: c.context()}
}

// UserCreated is published when a user is created.
func UserCreated(u *User) *Event { return &Event{Type: EventUserCreated, Data: u} }

// UserDataUpdated is published when a user's data changes.
func UserDataUpdated(u *User) *Event { return &Event{Type: EventUserDataUpdated, Data: u} }

// UserSuspensionStatusUpdated is published when a user is suspended or
// reactivated.
func UserSuspensionStatusUpdated(u *User) *Event {
	return &Event{Type: EventUserSuspensionStatusUpdated, Data: u}
}

// UserDeleted is published when the user with the given ID is deleted; pass
// the deleted user when you have it, or nil for "data": null.
func UserDeleted(id string, deleted *User) *Event {
	return deletedEvent(EventUserDeleted, id, deleted)
}

// RoleCreated, RoleDataUpdated and RoleDeleted are published on role changes.
func RoleCreated(r *Role) *Event     { return &Event{Type: EventRoleCreated, Data: r} }
func RoleDataUpdated(r *Role) *Event { return &Event{Type: EventRoleDataUpdated, Data: r} }
func RoleDeleted(id string, deleted *Role) *Event {
	return deletedEvent(EventRoleDeleted, id, deleted)
}

// RoleScopesUpdated is published when a role's permissions change; scopes
// are the role's permissions afterwards.
func RoleScopesUpdated(roleID string, scopes []Scope) *Event {
	return &Event{Type: EventRoleScopesUpdated, Data: nonNil(scopes), Context: map[string]any{"roleId": roleID}}
}

// ScopeCreated, ScopeDataUpdated and ScopeDeleted are published on
// permission changes.
func ScopeCreated(s *Scope) *Event     { return &Event{Type: EventScopeCreated, Data: s} }
func ScopeDataUpdated(s *Scope) *Event { return &Event{Type: EventScopeDataUpdated, Data: s} }
func ScopeDeleted(id string, deleted *Scope) *Event {
	return deletedEvent(EventScopeDeleted, id, deleted)
}

// OrganizationCreated, OrganizationDataUpdated and OrganizationDeleted are
// published on organization changes.
func OrganizationCreated(o *Organization) *Event {
	return &Event{Type: EventOrganizationCreated, Data: o}
}
func OrganizationDataUpdated(o *Organization) *Event {
	return &Event{Type: EventOrganizationDataUpdated, Data: o}
}
func OrganizationDeleted(id string, deleted *Organization) *Event {
	return deletedEvent(EventOrganizationDeleted, id, deleted)
}

// MembershipChange lists who joined and left an organization.
type MembershipChange struct {
	AddedUserIDs          []string
	RemovedUserIDs        []string
	AddedApplicationIDs   []string
	RemovedApplicationIDs []string
}

// MembershipIDsMax caps each list of ids of an Organization.Membership.Updated
// event, as Logto does, so that one bulk change cannot make an oversized
// event; "truncated": true says a list was cut.
const MembershipIDsMax = 5000

// OrganizationMembershipUpdated is published when users or applications join
// or leave an organization. As Logto sends it, organizationId and the lists
// are at the top level of the body, a list is left out when empty, and each
// holds at most MembershipIDsMax ids ("truncated": true when one was cut).
func OrganizationMembershipUpdated(organizationID string, change *MembershipChange) *Event {
	c := map[string]any{"organizationId": organizationID}
	for key, ids := range map[string][]string{
		"addedUserIds":          change.AddedUserIDs,
		"removedUserIds":        change.RemovedUserIDs,
		"addedApplicationIds":   change.AddedApplicationIDs,
		"removedApplicationIds": change.RemovedApplicationIDs,
	} {
		if len(ids) > MembershipIDsMax {
			ids = ids[:MembershipIDsMax]
			c["truncated"] = true
		}
		if len(ids) > 0 {
			c[key] = ids
		}
	}
	return &Event{Type: EventOrganizationMembershipUpdated, Context: c}
}

// OrganizationRoleCreated, OrganizationRoleDataUpdated and
// OrganizationRoleDeleted are published on organization role changes.
func OrganizationRoleCreated(r *OrganizationRole) *Event {
	return &Event{Type: EventOrganizationRoleCreated, Data: r}
}
func OrganizationRoleDataUpdated(r *OrganizationRole) *Event {
	return &Event{Type: EventOrganizationRoleDataUpdated, Data: r}
}
func OrganizationRoleDeleted(id string, deleted *OrganizationRole) *Event {
	return deletedEvent(EventOrganizationRoleDeleted, id, deleted)
}

// OrganizationRoleScopesUpdated is published when an organization role's
// permissions change; scopes are its permissions afterwards.
func OrganizationRoleScopesUpdated(organizationRoleID string, scopes []Scope) *Event {
	return &Event{Type: EventOrganizationRoleScopesUpdated, Data: nonNil(scopes), Context: map[string]any{"organizationRoleId": organizationRoleID}}
}

// OrganizationScopeCreated, OrganizationScopeDataUpdated and
// OrganizationScopeDeleted are published on organization permission changes.
func OrganizationScopeCreated(s *Scope) *Event {
	return &Event{Type: EventOrganizationScopeCreated, Data: s}
}
func OrganizationScopeDataUpdated(s *Scope) *Event {
	return &Event{Type: EventOrganizationScopeDataUpdated, Data: s}
}
func OrganizationScopeDeleted(id string, deleted *Scope) *Event {
	return deletedEvent(EventOrganizationScopeDeleted, id, deleted)
}

// IdentifierLockout is published when an identifier is locked; identifierType
// is email, phone or username.
func IdentifierLockout(identifierType, value string) *Event {
	return &Event{Type: EventIdentifierLockout, Data: map[string]any{"type": identifierType, "value": value}}
}

// MessageRateLimited is published when a message to recipient over channel
// (email, sms) is refused by a rate limit.
func MessageRateLimited(channel, recipient string) *Event {
	return &Event{Type: EventMessageRateLimited, Data: map[string]any{"type": channel, "value": recipient}}
}

// GrantLimitExceeded is published when a grant is refused because limit was
// reached.
func GrantLimitExceeded(applicationID, limit string) *Event {
	return &Event{Type: EventGrantLimitExceeded, Data: map[string]any{"applicationId": applicationID, "limit": limit}}
}

// deletedEvent carries the deleted entity as data when the caller has it,
// else null, and its ID at the top level either way.
func deletedEvent[T any](eventType, id string, deleted *T) *Event {
	event := &Event{Type: eventType, Context: map[string]any{"entityId": id}}
	if deleted != nil {
		event.Data = deleted
	}
	return event
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// HookInfo is a hook as operational events show it: never its signing keys
// nor its custom headers' values.
type HookInfo struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	TenantID       string   `json:"tenantId,omitempty"`
	Enabled        bool     `json:"enabled"`
	DisabledReason string   `json:"disabledReason,omitempty"`
	RateLimit      string   `json:"rateLimit,omitempty"`
	Filter         string   `json:"filter,omitempty"`
}

// hookEvent is an operational event about h, of h's tenant.
func hookEvent(eventType string, h *Hook) *Event {
	return &Event{Type: eventType, TenantID: h.TenantID, Data: &HookInfo{
		ID: h.ID, Name: h.Name, URL: h.URL, Events: h.Events, TenantID: h.TenantID, Enabled: h.Enabled,
		DisabledReason: h.DisabledReason, RateLimit: h.RateLimit, Filter: h.Filter,
	}}
}

// HookCreated, HookUpdated, HookDeleted, HookDisabled and HookEnabled are
// hookrelay's operational events about a hook, as it is after the change
// (before it, for HookDeleted); HookDisabled's DisabledReason says why.
func HookCreated(h *Hook) *Event  { return hookEvent(EventHookCreated, h) }
func HookUpdated(h *Hook) *Event  { return hookEvent(EventHookUpdated, h) }
func HookDeleted(h *Hook) *Event  { return hookEvent(EventHookDeleted, h) }
func HookDisabled(h *Hook) *Event { return hookEvent(EventHookDisabled, h) }
func HookEnabled(h *Hook) *Event  { return hookEvent(EventHookEnabled, h) }

// DeliveryFailure is a delivery that failed its last attempt.
type DeliveryFailure struct {
	ID             string `json:"id"`
	HookID         string `json:"hookId"`
	EventID        string `json:"eventId"`
	EventType      string `json:"eventType"`
	Attempts       int    `json:"attempts"`
	LastStatusCode int    `json:"lastStatusCode,omitempty"`
	LastError      string `json:"lastError,omitempty"`
}

// Event is hookrelay's operational event about a delivery that failed its
// last attempt (Delivery.Failed), of its hook's tenant.
func (f *DeliveryFailure) Event(tenantID string) *Event {
	return &Event{Type: EventDeliveryFailed, TenantID: tenantID, Data: f}
}
