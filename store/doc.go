// Package store is tandem's embedded, crash-safe diff store. It owns one
// SQLite file, <data_dir>/store.db (modernc.org/sqlite, pure Go, WAL
// journal, synchronous=FULL), and keeps three things in it:
//
//   - per-(route, minute) aggregates: the data plane's traffic counters
//     (AddCounters: every answer clients got, by who served it, its errors,
//     the mirrored share), comparison counts by signature (see "Noise"),
//     compare errors, per-(kind, path) difference counts and one
//     HdrHistogram of latencies per side. Report sums them.
//   - comparisons: one row per comparison (legacy→new, and legacy→secondary
//     when the route has a secondary), for Options.ComparisonRetention
//     (24 h), so Comparisons(requestID) answers "what happened to request
//     X?".
//   - samples: a bounded set of whole exchanges (both responses' metadata,
//     capped bodies, every difference) kept for mismatch, noise and error
//     outcomes, at most Options.SamplesPerPath per (route, kind, path).
//
// # Writes
//
// Record and AddCounters never block and never touch the disk: they put the
// item on a bounded queue (Options.QueueSize) and return false when it is
// full; the refusal is counted in StoreStats.Dropped. One writer goroutine
// (runWriter) drains the queue and commits up to 256 items, or what arrived
// within 100 ms, as ONE transaction. A failed transaction (disk full, I/O
// error) loses that batch, counts its items in StoreStats.WriteErrors (and
// by reason in WriteErrorsBy: disk_full, io, other), backs off for a second
// and goes on with the next batch, so the store recovers by itself when
// space frees. Options.Logger gets one line when writes start failing and
// one when they succeed again (with the items lost), not one per batch.
// Close flushes the queue.
//
// # Crash safety
//
// Every batch is one SQLite transaction in WAL mode with synchronous=FULL,
// so a batch is either wholly in the file or not at all, and what a Report
// once showed is still there after a crash or power loss: counters never go
// backwards. Items still on the queue when the process dies are lost (at
// most QueueSize items, about 100 ms of traffic under normal load).
//
// # Granularity
//
// Aggregates are kept per UTC minute. Report(route, since) sums every minute
// row whose minute is ≥ the minute containing since, so a window may include
// up to 59 seconds before since. Aggregates are never expired (they are
// small: one row per route per minute with traffic, plus one per differing
// path and one per distinct signature); samples and comparison rows are.
//
// # Samples and data protection
//
// A sample is kept when its recorded outcome is mismatch, noise or error and at least
// one of its (route, kind, path) keys has fewer than SamplesPerPath samples;
// the sample is charged to the keys that had room. An error exchange without
// differences is keyed (status, "$.error"). Bodies are cut to SampleBodyMax
// bytes, difference values to 64 KiB. Values of the Authorization,
// Proxy-Authorization, Cookie and Set-Cookie headers, and the values of
// header differences on those headers, are replaced by "[redacted]" before
// anything is written. A janitor goroutine (runJanitor, also callable as
// Janitor(now)) deletes samples older than Retention and then the oldest
// samples (and comparison rows, see "Noise") while their total size
// exceeds MaxBytes; a path whose samples were deleted takes new ones again. The file and its -wal/-shm companions have
// mode 0600.
//
// # Noise
//
// The store does not learn noise, and it does not decide it when it
// records: noise is applied when numbers are read. Each comparison is kept
// as its compare.Signature, the set of (kind, path) pairs at which the two
// responses differed, and Report and Comparisons turn signatures into
// outcomes with Options.Noise (the Learner; nil: nothing is noise) as it
// stands when they read: a field learned as noise after 50 requests stops
// counting for those first 50 too. In detail:
//
//   - Signatures are numbered per route in a table, deduplicated: at most
//     3,072 full signatures per route; past that a new one is kept as its
//     Signature.Shape (array indexes as [*]) while the route has fewer than
//     4,096; past that it is recorded as an overflow, which always reads as
//     a mismatch and lists no pairs. The writer keeps the table in memory
//     (one SELECT per route, once), so a known signature costs no query.
//   - Per (route, minute, role, signature) a count, role primary (legacy vs
//     new) and secondary (legacy vs secondary). Report's Matched,
//     Mismatched, Noise and DiffRate classify the primary counts; the
//     secondary ones are kept for the same reading elsewhere (the ramp, a
//     fleet).
//   - Compare errors are never classified: the primary's are counted in
//     CompareErrors, the secondary's apart, and a lookup shows them as
//     errors whatever the model says of their pairs.
//   - A PathStat's Noise is Options.Noise.Noise(route, kind, path) at read
//     time; the per-(kind, path) counts do not depend on noise.
//   - Minutes recorded before schema version 3 (a file written by an older
//     tandem, migrated in place when opened) report the matched, mismatched
//     and noise counts they recorded, with the noise model of their time;
//     they have no signatures to classify again and no comparison rows.
//     New comparisons in the same minute add to them.
//   - Each comparison row keeps the request id, time, route, role,
//     instance (Options.Instance), signature id, the outcome recorded (the
//     learner's view then; not read for counts) and the id of the sample
//     stored of it, if any. Rows are kept for ComparisonRetention and count
//     against MaxBytes with the samples: an estimated 56 bytes plus twice
//     the request id and the route, instance, outcome and sample id's
//     lengths (measured 112 bytes per row with 16-byte ids), so 1 GiB holds
//     about 9 million rows, a day at about 100 comparisons a second. The
//     janitor deletes rows past their retention, then, while samples and
//     rows together exceed MaxBytes, the oldest of either first.
//
// # A second implementation
//
// The application reaches the store through app.DiffStore (the admin API
// through its narrower admin.Reports), so another store (the fleet's, in
// PostgreSQL) can take its place. Package storetest (storetest.Run) checks
// these guarantees against any implementation; TestContract runs it
// against *Store, and a second implementation's tests call it the same
// way. Where a guarantee is a rule rather than SQL, store exports the
// rule itself for the other store to call with its own database access:
// SampleOf (a sample's redacted content), SampleQuota (which exchanges
// keep a sample, under which (route, kind, path) keys, and the per-key
// cap counted from a callback), ReportSums with FinishReports (rows
// of counters, verdicts by signature, latency and paths summed into
// reports, the noise model applied when read) and SeriesSums (rows of
// minutes summed per bucket of a series, each store decoding its own
// histograms through a callback, the noise model applied when read) and
// ReadNow (a stored comparison's outcome and differences as the noise
// model reads them now). Each is what *Store does:
//
//   - Record and AddCounters never block the caller and never fail it: a
//     refusal (full queue, closed store) returns false and counts one drop
//     in StoreStats.Dropped. The caller may send a refused counter delta
//     again; nothing is counted twice by the store itself.
//   - Durability: what was enqueued before a Flush that returned nil
//     survives a crash and a reopen; Close commits what is queued first.
//     A batch is all-or-nothing: a Report never shows part of one, and the
//     counts it shows never go backwards.
//   - Time: an exchange is charged to the UTC minute of its At (of the
//     store's clock when At is zero), a counter delta to that of its at.
//     Report(route, since) sums whole minutes from the one containing
//     since; since zero means all data; RouteReport.Since is that minute
//     (or the first minute with data). Sample times are At, in UTC.
//   - Ordering: Report("") lists routes by name; a named route gets
//     exactly one report, zeros when it has no data; every SkipReasons key
//     is present; Diffs are most frequent first (ties by kind, then path).
//     Samples are newest first (by At, ties by id, descending), at most
//     MaxSampleLimit, DefaultSampleLimit when the filter's Limit is 0.
//   - Samples: kept only for mismatch, noise and error outcomes; at most
//     SamplesPerPath per (route, kind, path); bodies cut to SampleBodyMax
//     with BodyTruncated set; the credential headers and the request's
//     secrets redacted before anything is written. Sample of an unknown or
//     expired id returns an error matching ErrNotFound (errors.Is).
//   - Noise at read time: Report's and Series' Matched, Mismatched, Noise
//     and DiffRate, each PathStat's Noise, each Comparison's Outcome and
//     Diffs' Noise, and each Sample's (and SampleSummary's) Outcome and
//     Diffs' Noise, are what the store's noise model says when they are
//     read, not what it said when the comparison was recorded; a
//     comparison or sample with an error outcome stays a compare error.
//   - Series(route, since, step): the minutes of Report's window summed
//     per bucket of step (one of SeriesSteps), buckets aligned to
//     multiples of step since the Unix epoch, oldest first, buckets
//     without data left out; route "" gives every route with data by
//     name, a named route exactly one series. Each point has the report's
//     counts for its bucket and each side's p99 latency; a step not in
//     SeriesSteps is an error.
//   - SampleFilter.Since keeps the samples whose At is at or after it.
//   - Comparisons(id): every retained comparison of the request,
//     legacy→new and legacy→secondary, oldest first (ties in recording
//     order, legacy→new first), each with route, instance, the differing
//     pairs and the id of its sample when one is kept; an unknown or
//     expired id gives an empty list and no error. The secondary's
//     comparisons are not counted in Report.
//   - Size bounds: samples expire after Retention, comparison rows after
//     ComparisonRetention, and the oldest of either go past MaxBytes;
//     aggregates are kept.
//   - After Close: Record and AddCounters return false, Flush returns
//     ErrClosed, Close again returns the first Close's error.
//
// # Imports
//
// store imports compare (the result model) and exchange (the finished
// exchange it records, and the shadow outcomes that are its skip reasons),
// and nothing of the data plane: not proxy, not fasthttp, not config. The
// proxy reaches it through a small interface it declares itself (Observer);
// package app wires the two.
package store
