package pgrules

import "github.com/tandem-proxy/tandem/internal/pgmigrate"

// Component is this package's name in pgmigrate's ledger.
const Component = "rules"

// migrations are the rules component's schema. Every table is prefixed
// rules_.
//
//   - rules_audit: the audit log, one row per event (the whole rules.Event
//     as JSON, its time and instance as columns for the queries);
//   - rules_versions: every rules version, with the audit row of the change
//     that made it (unique: one audit row per version);
//   - rules_head: one row, the version in force and the digest of the
//     config file's routes last applied; the compare-and-set is on it;
//   - rules_instances: the registry (name, started_at, last_seen,
//     applied_version, and since version 2 the incarnation that wrote the
//     row last), last_seen in the database's clock;
//   - rules_noise_counts: the fleet's noise counts, per route the totals
//     (kind and path ”) and per (kind, path) the comparisons that differed;
//   - rules_noise_batches: per instance incarnation the last count batch
//     added, so that a batch retried after an unclear commit is added once;
//   - rules_noise_marks: operators' marks, with their audit rows.
var migrations = []pgmigrate.Migration{{Version: 1, SQL: `
CREATE TABLE rules_audit (
	id BIGSERIAL PRIMARY KEY,
	time TIMESTAMPTZ NOT NULL,
	instance TEXT NOT NULL,
	event JSONB NOT NULL
);
CREATE INDEX rules_audit_time ON rules_audit (time);
CREATE TABLE rules_versions (
	version BIGINT PRIMARY KEY CHECK (version >= 1),
	routes JSONB NOT NULL,
	file_digest TEXT NOT NULL,
	audit_id BIGINT NOT NULL UNIQUE REFERENCES rules_audit (id),
	created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE rules_head (
	one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
	version BIGINT NOT NULL REFERENCES rules_versions (version),
	file_digest TEXT NOT NULL
);
CREATE TABLE rules_instances (
	name TEXT PRIMARY KEY,
	started_at TIMESTAMPTZ NOT NULL,
	last_seen TIMESTAMPTZ NOT NULL,
	applied_version BIGINT NOT NULL
);
CREATE TABLE rules_noise_counts (
	route TEXT NOT NULL,
	kind TEXT NOT NULL,
	path TEXT NOT NULL,
	secondary_diffs BIGINT NOT NULL,
	primary_diffs BIGINT NOT NULL,
	PRIMARY KEY (route, kind, path)
);
CREATE TABLE rules_noise_batches (
	incarnation TEXT PRIMARY KEY,
	seq BIGINT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE rules_noise_marks (
	route TEXT NOT NULL,
	path TEXT NOT NULL,
	reason TEXT NOT NULL,
	audit_id BIGINT NOT NULL REFERENCES rules_audit (id),
	PRIMARY KEY (route, path)
);
`}, {Version: 2, SQL: `
ALTER TABLE rules_instances ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
`}}
