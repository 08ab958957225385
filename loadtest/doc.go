// Package loadtest is tandem's load generator: a library with a thin CLI
// (`tandem loadtest`) on top, in the manner of vegeta.
//
// An attack sends hits built from Targets (one method, URL and header set;
// bodies round-robin from a corpus directory or of synthetic sizes; sticky
// user ids in a header) in one of two modes:
//
//   - Open loop (Options.Pacer set). A Pacer is a pure function of elapsed
//     time and hits sent, so schedules are tested without sleeping. Each hit
//     is handed to an idle worker at its due time; when every worker is
//     busy the attacker starts another, up to Options.MaxWorkers, so a
//     target that slows down still sees the offered rate. Latency is
//     measured from each hit's intended send time, not from when a worker
//     got to it, so a stall is charged to every hit it delayed (no
//     coordinated omission).
//   - Closed loop (Options.Pacer nil). Options.Concurrency workers each send
//     their next hit when the last is answered. The target never sees more
//     than Concurrency requests in flight, and the rate follows its latency.
//
// A hit succeeds when its status is one it was told to expect: a body's
// own StatusSet (LoadCorpus reads them from a corpus's expect.txt), else
// Options.Expect, else DefaultExpect (200 to 399); other statuses are
// failures, like transport errors. Results.Check judges the results
// against Thresholds (error rate, p99, successful rate; no expected answer
// at all always fails), as k6's thresholds do, and the CLI turns the
// verdict into its exit status.
//
// Results hold per-status counts, transport errors by kind (a closed set:
// ErrTimeout, ErrRefused, …), bytes, offered rate, throughput and latency
// percentiles read from an HDR histogram (internal/latency: 1 µs to 1 h,
// 1% precision, the same setup and percentile function as the diff store's
// report and the ramp's latency gate, so one set of latencies gives one p99
// in all three); WriteText and MarshalJSON render them.
//
// The HTTP client is fasthttp's HostClient, with retries, path
// normalisation and connection waiting turned off so that what is measured
// is what was sent. It reuses each worker's request and response and
// shares bodies without copying, so the generator is rarely the
// bottleneck.
//
// The package owns the attack's goroutines (one scheduler, the workers),
// its connections and its results. It must not import package proxy or any
// other part of tandem's data plane: it is a client of tandem, seen from
// outside.
package loadtest
