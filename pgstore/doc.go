// Package pgstore is the fleet's diff store: app.DiffStore (and
// admin.Reports) on PostgreSQL, shared by every tandem instance that names
// the same fleet.database. It keeps the guarantees package store lists
// under "A second implementation" (TestContract runs storetest.Run against
// it on a real cluster) and reads the same model types (store.RouteReport,
// store.Sample, …). The schema is pgmigrate component "store"; its tables
// are prefixed store_.
//
// # One set of numbers
//
// Every row an instance writes carries its name (Options.Instance), and an
// instance only ever writes its own rows, so instances never contend:
//
//   - store_minutes: per (route, minute, instance) the traffic counters
//     (AddCounters) and compare-side counts, added as deltas
//     (INSERT … ON CONFLICT DO UPDATE SET c = t.c + EXCLUDED.c), and one
//     HdrHistogram per side (V2 encoding, internal/latency's geometry),
//     merged in the writing transaction: the writer reads its own row's
//     histograms once and keeps them in memory while it writes that minute
//     (reading them FOR UPDATE every batch instead cost 40% of the writer's
//     throughput). So two processes must never run with one instance name
//     at once: their counters would still add up, but each would write
//     back its own merge of the histograms.
//   - store_minute_sigs, store_minute_diffs: per (route, minute, instance)
//     counts by signature and role, and by differing (kind, path).
//   - store_signatures: the compare.Signature keys, shared and
//     deduplicated (an upsert returning the id, run outside the batch's
//     transaction so a cached id is never rolled back; each instance
//     caches the ids in memory). The per-route bounds are package store's
//     (3,072 full, then shapes, 4,096 in all, then an overflow), counted
//     from each instance's view of the table.
//   - store_comparisons, store_samples, store_sample_paths: one row per
//     comparison and per kept sample, with the instance that made it.
//
// Every read sums across instances: Report, Series, Samples, Sample and
// Comparisons on *Store cover the fleet, with the noise model applied when
// read (Options.Noise) exactly as package store does (a report's rows are
// summed by store.ReportSums, a series' by store.SeriesSums and each
// comparison read by store.ReadNow, the same
// code as store's; this store decodes its own V2-encoded histograms).
// Instance(name) is the same reads narrowed to one instance's rows (for
// ?instance=), and Instances lists the instances with data. A report or a
// series is read in one REPEATABLE READ transaction, so it never shows
// part of a batch.
//
// # Writes
//
// Record and AddCounters never block and never touch the database: they
// put the item on a bounded buffer and return false, counting a drop in
// StoreStats.Dropped, when it is full. The bound is on what is enqueued and
// not yet committed, the batch being retried included: at most
// Options.BufferItems items (DefaultBufferItems, 8,192) and
// Options.BufferBytes of them (DefaultBufferBytes, 64 MiB; an exchange
// counts 1 KiB plus its bodies up to SampleBodyMax, a counter delta 256
// bytes). One writer goroutine commits up to 1,024 items (16 MiB), or what
// arrives within 100 ms, as one transaction. When the database fails a
// batch, the batch is KEPT and retried with backoff (100 ms doubling to
// 5 s) while new items wait in the buffer, so an outage shorter than the
// buffer loses nothing and the data catches up when the database returns;
// past the bound new items are refused and counted. Flush waits until
// everything enqueued before it is committed, or returns the error of the
// attempt that failed (its items stay buffered). Close commits what is
// buffered, retrying for at most Options.CloseTimeout (10 s), then counts
// what is left in StoreStats.WriteErrors. Up reports whether the last
// write or ping (every 2 s while idle) succeeded: tandem_fleet_database_up.
// Open needs the database (it migrates the schema); later outages are
// buffered.
//
// Durability: a committed batch is PostgreSQL's to keep (synchronous
// commit), so what Flush acknowledged survives a kill -9 of the instance
// (TestKillAfterFlush); items still buffered when the process dies are
// lost, at most the buffer bound. A COMMIT whose reply is lost in a
// network failure is not added twice: every batch records its writer's
// incarnation and attempt number in store_batches in the same transaction,
// and the retry first reads whether the failed attempt was committed after
// all, and if so leaves its items out (TestLostCommitReplyAddsOnce).
//
// # Samples' bodies
//
// Samples are kept in the database, bodies as bytea cut to SampleBodyMax
// (1 MiB) with BodyTruncated set, redacted exactly as package store
// redacts them (store.SampleOf). In the database rather than in a shared
// directory because then there is one place to back up and restore, no
// shared filesystem to provision and keep mounted on every instance, a
// sample and its rows are written in one transaction (never a row without
// its body, or a body without a row), and their size is bounded anyway:
// by SampleBodyMax per body, SamplesPerPath per (route, kind, path),
// Retention and MaxBytes. The per-path cap is read in the writing
// transaction; two instances keeping samples for the same new path at the
// same moment may each take the last place, so a path can briefly hold a
// few more than SamplesPerPath. Which exchanges keep a sample and which
// keys it is charged to is store.SampleQuota, the rule package store
// applies, with this store's count query.
//
// # Retention
//
// A janitor goroutine (every minute, or Janitor(now)) deletes samples past
// Retention and comparison rows past ComparisonRetention, then the oldest
// of either while their total size exceeds MaxBytes, in one transaction
// holding a transaction-scoped advisory lock (pg_try_advisory_xact_lock,
// JanitorLockKey): one instance's janitor runs at a time, the others skip
// that round. Aggregates are kept.
//
// # Wiring
//
// app takes a *Store as app.Options.Store when fleet.database is set:
// Open(ctx, cfg.Fleet.Database, Options{Instance: cfg.Fleet.Instance,
// Noise: the learner, …retention and samples settings}); the admin API
// serves Instance(name) for ?instance=NAME and Instances for the live
// list; the metrics export Up as tandem_fleet_database_up.
//
// pgstore imports store (the model and its shared rules: SampleOf,
// SampleQuota, ReportSums, SeriesSums), compare, exchange, admin (the Reports
// interface), internal/latency and internal/pgmigrate; nothing of the
// data plane.
package pgstore
