// Package pgrules is the fleet's rules store on PostgreSQL (fleet.database):
// one rules history, one audit log, an instance registry and a shared noise
// model for every tandem instance that names the same database. Store
// satisfies rulestore.Store and has the Update, Promote, Rollback,
// ReplaceFromFile and FileChanged of rulestore.State, so the application,
// the admin API and the ramp take either.
//
// Rules. The version in force is one row (rules_head); a change is one
// transaction that locks it, compares it with If-Match (stale: an error
// wrapping rules.ErrStale, 409), runs the mutation and the validator (the
// application passes proxy.CheckRules in it, as for rulestore.State, so a
// stored version can be put in force), stores the version with its audit
// row (rules_versions.audit_id is unique: one row per version) and sends
// NOTIFY tandem_rules, '<version>' — all committed together or not at
// all. Every instance LISTENs on a connection of its own (pgxlisten, which
// reconnects) and also polls every PollInterval (1 s), since NOTIFY is not
// durable; it puts the versions it has not seen in force in version order,
// each one validated by its own validator (a version it refuses is logged
// and not put in force there; its applied version stays behind). The
// first instance to start on an empty database seeds version 1 from the
// config file (an advisory lock: of instances starting together, one
// seeds); a changed config file is a new version, actor "file".
//
// The database is off the request path: Current, Subscribe's callbacks,
// AppliedVersion, FleetInstances and Up read memory. When the database
// cannot be reached, the rules in force stay, every change (Apply, Update,
// Promote, Rollback, ReplaceFromFile, Record, MarkNoise) returns an error
// wrapping ErrUnavailable (rules.ErrUnavailable: the admin API answers
// 503), and the store recovers by itself: the pool reconnects, the poll
// catches up, the listener reconnects.
//
// Fenced changes. ApplyTx and RecordTx are Apply and Record with a hook
// run first in their transaction (TxHook): the ramp driver (pgramp) runs
// pglease.Fence there, so its lease check, the compare-and-set, the audit
// row and the NOTIFY commit together or not at all. ServeNewSince reads
// the history for the version a route's serve_new has held since (the
// ramp's step key).
//
// Registry. Every PollInterval, and soon after a version is applied, each
// instance upserts its row in rules_instances (name, started_at,
// last_seen in the database's clock, applied_version: the last version its
// Subscribe callbacks applied). LiveInstances lists those seen within a
// window; AllApplied(v) says whether every live one has applied v, for the
// ramp driver to wait on before a step.
//
// Noise. With Options.Learner, the Learner's counts are the fleet's: every
// NoiseInterval the store takes the Learner's delta (compare.Learner.
// TakeDelta), adds it to rules_noise_counts and reads the totals back
// (SetCounts) in one transaction; a batch whose commit failed is retried
// with its sequence number, which the database adds at most once. A mark
// (MarkNoise) is stored with its audit row in one transaction before it
// takes effect on any instance; every instance loads the marks each
// PollInterval. compare stays pure: the database work is here.
//
// Wiring (app, with fleet.database set): open a pgxpool.Pool, Open with
// Options{Instance: fleet.instance, Seed: cfg.Routes, Validate: the same
// validator as for OpenState, Learner: the app's}, call FileChanged and
// ReplaceFromFile as for State, px.Follow(store), give the store to admin
// (Rules) and ramp (State), export AppliedVersion, FleetInstances and Up as
// tandem_rules_applied_version, tandem_fleet_instances and
// tandem_fleet_database_up, and map MarkNoise's ErrBadMark to
// admin.BadRequestError and ErrUnavailable to admin.NotAppliedError. Close
// the Store before the pool.
//
// It imports rules, rulestore, compare and internal/pgmigrate; never proxy,
// ramp, admin, store or config.
package pgrules
