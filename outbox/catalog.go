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
)

// EventInfo describes one event of the catalogue.
type EventInfo struct {
	Type string `json:"type"`
	// Kind is interaction, data or exception.
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
}
