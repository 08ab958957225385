// Package compare is tandem's diff engine: it compares the legacy backend's
// response with the new backend's (always oriented legacy → new) and says
// whether they match, and if not, where and how they differ.
//
// It owns:
//   - the diff model (Response, Difference, Result, Kind, Outcome) and its
//     text rendering (Result.Text); the JSON form is the struct tags;
//   - per-route comparison Settings, their validation and defaults;
//   - the comparisons themselves: status, headers, JSON trees (go-cmp),
//     images (decoded and compared perceptually: format, dimensions, EXIF
//     orientation, alpha, frames, structure as SSIM, colour as CIEDE2000,
//     PSNR; see measure.go for the measures and the labelled corpus their
//     defaults come from) and plain bytes;
//   - noise learning (Learner): which differing paths are noise, learned from
//     legacy-vs-secondary comparisons or marked by an operator.
//
// # Comparisons
//
// Compare checks, in order: transport errors ("$.error", OutcomeError);
// status ("$.status"); headers ("$.header.<Name>", noise and hop-by-hop
// headers skipped, see HopByHopHeaders and DefaultNoiseHeaders); then the
// body, chosen by content: images by magic bytes ("$.image.format",
// ".decode", ".dimensions", ".orientation", ".frames", ".alpha", ".psnr",
// ".ssim", ".mean_shift"; see image.go and measure.go), JSON by Content-Type or shape (structural,
// "$.items[3].width"; see json.go), anything else by hash and size
// ("$.body", with the first differing line for text; see body.go). Bodies
// captured only in part (Response.Truncated) are compared by hash and size.
//
// # Paths
//
// A path names a location in a response: "$.status", "$.header.Content-Type",
// "$.items[3].width", `$["odd key"]`, "$.image.psnr", "$.body". The same
// grammar serves the paths that Differences carry, ignore_json patterns and
// noise marks:
//
//	path    = "$" { segment }
//	segment = "." name | "." "*" | "[" index "]" | "[" "*" "]" | "[" quoted "]"
//	name    = one or more characters other than . [ ] * " ' and white space
//	quoted  = a JSON string ("…") or a single-quoted string without escapes ('…')
//
// Differences write a key as .name when it is made of ASCII letters, digits,
// '_' and '-' and does not start with a digit, else as ["quoted"]. A pattern
// matches a path when each of its segments matches the path's segment at the
// same position: a pattern also covers everything below the location it
// names. "*" and "[*]" match any one segment (object key or array index).
// Recursive descent ("..") and filters are not supported.
//
// # Purity
//
// It is pure: no network code (not even net/textproto), no fasthttp, no file
// I/O, no background goroutines, no global mutable state. Callers hand it
// bytes already captured, and persist the Learner's Snapshot themselves
// (or, for a fleet, exchange its counts with TakeDelta and SetCounts).
// Every input is treated as hostile: JSON depth, size and value count, image
// pixel counts and decoded memory (a DecodeBudget the caller creates and
// shares between Comparers and HeatMap, reserved from the headers before
// any pixel buffer exists) and the number of listed differences are
// bounded; a pair past a bound compares by hash and size and Result.Limit
// says which bound; and Compare never panics.
package compare
