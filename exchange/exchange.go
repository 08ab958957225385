package exchange

import (
	"time"

	"github.com/tandem-proxy/tandem/compare"
)

// Exchange is one finished comparison: a request, the answers of both
// sides and their comparison. The data plane fills it and hands it to its
// observer; from then on it is owned by the observers, which must not
// change it (several read the same one, in turn).
type Exchange struct {
	Route     string
	RequestID string
	Method    string
	Path      string
	ServedBy  string // "legacy" or "new"
	// At is when the request arrived. A store writes a zero At as its own
	// clock's now.
	At     time.Time
	Legacy *compare.Response
	New    *compare.Response
	// LegacyLatency and NewLatency are times to response headers.
	LegacyLatency, NewLatency time.Duration
	Result                    compare.Result
	// Secondary is the answer of the route's secondary backend (a second
	// legacy instance) and SecondaryResult its comparison with Legacy, when
	// one was made; both nil otherwise. Its differences can only be noise:
	// the learner counts them, and a store records them (role secondary)
	// so that a comparisons lookup shows them.
	Secondary       *compare.Response
	SecondaryResult *compare.Result
	// Secrets are the credential values the client sent (Authorization
	// credentials, cookie values), so that a store can scrub them wherever a
	// backend echoed them. They must never be stored or logged.
	Secrets []string
}

// NewFailed reports whether the new backend failed: a transport error or a
// 5xx answer.
func (ex *Exchange) NewFailed() bool { return ex.New.Err != "" || ex.New.Status >= 500 }

// LegacyOK reports whether legacy answered (whatever its status).
func (ex *Exchange) LegacyOK() bool { return ex.Legacy.Err == "" }

// Compared reports whether the comparison produced a verdict.
func (ex *Exchange) Compared() bool { return ex.Result.Outcome != compare.OutcomeError }

// Mismatch reports whether the comparison found a real difference.
func (ex *Exchange) Mismatch() bool { return ex.Result.Outcome == compare.OutcomeMismatch }
