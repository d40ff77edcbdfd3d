package outbox

// Version is hookrelay's version, sent in every delivery's User-Agent as
// hookrelay/<Version>.
const Version = "0.1.0"

// UserAgent is the User-Agent of every delivery.
const UserAgent = "hookrelay/" + Version
