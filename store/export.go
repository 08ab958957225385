package store

import (
	"github.com/tandem-proxy/tandem/exchange"
)

// SampleOf is the sample this store keeps of ex, for a second
// implementation (package pgstore) to store the same redacted content: the
// credential headers' values and the values of differences on them read
// Redacted, the request's secrets are scrubbed from headers, errors,
// difference values and bodies, difference values are capped at 64 KiB and
// each body is cut to bodyMax bytes (BodyTruncated set). ID is empty,
// Outcome is ex's recorded outcome and At is ex.At in UTC; the caller
// classifies at read time.
func SampleOf(ex *exchange.Exchange, bodyMax int64) Sample {
	diffs := redactDiffs(ex.Result.Diffs)
	for i := range diffs {
		diffs[i].Legacy = scrubString(diffs[i].Legacy, ex.Secrets)
		diffs[i].New = scrubString(diffs[i].New, ex.Secrets)
	}
	ls, lb := sideSample(ex.Legacy, ex.LegacyLatency, bodyMax)
	ns, nb := sideSample(ex.New, ex.NewLatency, bodyMax)
	scrubSide(&ls, ex.Secrets)
	scrubSide(&ns, ex.Secrets)
	ls.Body = scrubBytes(lb, ex.Secrets)
	ns.Body = scrubBytes(nb, ex.Secrets)
	return Sample{
		Route: ex.Route, RequestID: ex.RequestID, Method: ex.Method, Path: ex.Path, ServedBy: ex.ServedBy,
		At: ex.At.UTC(), Outcome: ex.Result.Outcome, Diffs: diffs, Legacy: ls, New: ns,
	}
}
