package outbox

// The event catalogue: Logto's events, which hookrelay carries as first-class
// types. Custom dotted types (Invoice.Paid) stay allowed.
const (
	// Interaction events: a user finished a flow of the sign-in experience.
	EventPostRegister                   = "PostRegister"
	EventPostSignIn                     = "PostSignIn"
	EventPostSignInAdaptiveMfaTriggered = "PostSignInAdaptiveMfaTriggered"
	EventPostResetPassword              = "PostResetPassword"

	// Data events: an entity changed.
	EventUserCreated                   = "User.Created"
	EventUserDeleted                   = "User.Deleted"
	EventUserDataUpdated               = "User.Data.Updated"
	EventUserSuspensionStatusUpdated   = "User.SuspensionStatus.Updated"
	EventRoleCreated                   = "Role.Created"
	EventRoleDeleted                   = "Role.Deleted"
	EventRoleDataUpdated               = "Role.Data.Updated"
	EventRoleScopesUpdated             = "Role.Scopes.Updated"
	EventScopeCreated                  = "Scope.Created"
	EventScopeDeleted                  = "Scope.Deleted"
	EventScopeDataUpdated              = "Scope.Data.Updated"
	EventOrganizationCreated           = "Organization.Created"
	EventOrganizationDeleted           = "Organization.Deleted"
	EventOrganizationDataUpdated       = "Organization.Data.Updated"
	EventOrganizationMembershipUpdated = "Organization.Membership.Updated"
	EventOrganizationRoleCreated       = "OrganizationRole.Created"
	EventOrganizationRoleDeleted       = "OrganizationRole.Deleted"
	EventOrganizationRoleDataUpdated   = "OrganizationRole.Data.Updated"
	EventOrganizationRoleScopesUpdated = "OrganizationRole.Scopes.Updated"
	EventOrganizationScopeCreated      = "OrganizationScope.Created"
	EventOrganizationScopeDeleted      = "OrganizationScope.Deleted"
	EventOrganizationScopeDataUpdated  = "OrganizationScope.Data.Updated"

	// Exception events: something needs attention.
	EventIdentifierLockout  = "Identifier.Lockout"
	EventMessageRateLimited = "Message.RateLimited"
	EventGrantLimitExceeded = "Grant.LimitExceeded"

	// Operational events: hookrelay's own, about its hooks and deliveries,
	// published in the transaction of the change they report.
	EventHookCreated    = "Hook.Created"
	EventHookUpdated    = "Hook.Updated"
	EventHookDeleted    = "Hook.Deleted"
	EventHookDisabled   = "Hook.Disabled"
	EventHookEnabled    = "Hook.Enabled"
	EventDeliveryFailed = "Delivery.Failed"
)

// IsOperational reports whether eventType is one of hookrelay's operational
// events: no operational event is made about a delivery of one, so that a
// hook receiving them that fails makes no more.
func IsOperational(eventType string) bool {
	switch eventType {
	case EventHookCreated, EventHookUpdated, EventHookDeleted, EventHookDisabled, EventHookEnabled, EventDeliveryFailed:
		return true
	}
	return false
}

// EventInfo describes one event of the catalogue.
type EventInfo struct {
	Type string `json:"type"`
	// Kind is interaction, data, exception or operational.
	Kind string `json:"kind"`
	// Fires says when the event is published.
	Fires string `json:"fires"`
}

// Catalog lists every event of the catalogue, in the order of Logto's docs.
var Catalog = []EventInfo{ //nolint:gochecknoglobals // a read-only table
	{EventPostRegister, "interaction", "a user finished registering a new account"},
	{EventPostSignIn, "interaction", "a user finished signing in"},
	{EventPostSignInAdaptiveMfaTriggered, "interaction", "a sign-in was judged risky and asked for an extra factor"},
	{EventPostResetPassword, "interaction", "a user finished resetting a forgotten password"},
	{EventUserCreated, "data", "a user was created (registration or the management API)"},
	{EventUserDeleted, "data", "a user was deleted"},
	{EventUserDataUpdated, "data", "a user's profile or other data changed"},
	{EventUserSuspensionStatusUpdated, "data", "a user was suspended or reactivated"},
	{EventRoleCreated, "data", "a role was created"},
	{EventRoleDeleted, "data", "a role was deleted"},
	{EventRoleDataUpdated, "data", "a role's name or description changed"},
	{EventRoleScopesUpdated, "data", "permissions were added to or removed from a role"},
	{EventScopeCreated, "data", "a permission (API resource scope) was created"},
	{EventScopeDeleted, "data", "a permission was deleted"},
	{EventScopeDataUpdated, "data", "a permission's name or description changed"},
	{EventOrganizationCreated, "data", "an organization was created"},
	{EventOrganizationDeleted, "data", "an organization was deleted"},
	{EventOrganizationDataUpdated, "data", "an organization's data changed"},
	{EventOrganizationMembershipUpdated, "data", "users or applications were added to or removed from an organization"},
	{EventOrganizationRoleCreated, "data", "an organization role was created"},
	{EventOrganizationRoleDeleted, "data", "an organization role was deleted"},
	{EventOrganizationRoleDataUpdated, "data", "an organization role's data changed"},
	{EventOrganizationRoleScopesUpdated, "data", "permissions were added to or removed from an organization role"},
	{EventOrganizationScopeCreated, "data", "an organization permission was created"},
	{EventOrganizationScopeDeleted, "data", "an organization permission was deleted"},
	{EventOrganizationScopeDataUpdated, "data", "an organization permission's data changed"},
	{EventIdentifierLockout, "exception", "an identifier (email, phone, username) was locked after too many failed attempts"},
	{EventMessageRateLimited, "exception", "an email or SMS was not sent because of a rate limit"},
	{EventGrantLimitExceeded, "exception", "a token grant was refused because a limit was reached"},
	{EventHookCreated, "operational", "a hook was created"},
	{EventHookUpdated, "operational", "a hook's settings changed"},
	{EventHookDeleted, "operational", "a hook was deleted"},
	{EventHookDisabled, "operational", "a hook was disabled: by an operator, a 410 answer or failures for the disable window (reason says which)"},
	{EventHookEnabled, "operational", "a hook was enabled again"},
	{EventDeliveryFailed, "operational", "a delivery failed its last attempt (never for a delivery of an operational event)"},
}
