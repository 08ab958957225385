package exchange

// Outcome is what became of a served request's shadow copy: the closed
// label set of tandem_shadow_total{outcome}. Sent and Error are copies that
// went out (Error: the shadow exchange failed); the others are skip
// reasons, copies never sent.
type Outcome string

const (
	Sent        Outcome = "sent"         // the copy was sent and answered
	Sampling    Outcome = "sampling"     // the route's mirror share left it out
	QueueFull   Outcome = "queue_full"   // limits.shadow_concurrency copies were in flight
	BreakerOpen Outcome = "breaker_open" // the shadow backend's breaker was open
	TooLarge    Outcome = "too_large"    // the body was over what a copy may hold
	SpoolFull   Outcome = "spool_full"   // limits.spool_disk was used up
	Error       Outcome = "error"        // the copy was sent and its exchange failed
)

// Outcomes lists every Outcome in a stable order (the metric's series order).
var Outcomes = [...]Outcome{Sent, Sampling, QueueFull, BreakerOpen, TooLarge, SpoolFull, Error}

// Skipped reports whether o means the copy was never sent.
func (o Outcome) Skipped() bool { return o != Sent && o != Error && o != "" }

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool {
	for _, x := range Outcomes {
		if x == o {
			return true
		}
	}
	return false
}
