// Package app is tandem's application: it turns a loaded configuration into
// a running instance and owns everything that joins the packages below it.
//
// Open builds the backends, the rules state, the diff store, the data plane,
// the ramp controller and the admin listener, and listens; Run serves until
// its context ends and then shuts down within shutdown_timeout; Close
// releases what is left. The Instance owns:
//
//   - the periodic jobs (jobs.go), each a named goroutine with its own stop:
//     the counter flush to the store, the ramp tick, the noise snapshot,
//     and the report-gauge job that sets tandem_report_diff_rate{route} to
//     the report's read-time diff rate every 10 s (and once at start-up);
//   - reload of the config file (on Reload, i.e. SIGHUP, and on the fsnotify
//     watcher's change events), its counting and auditing (reload.go);
//   - noise persistence in data_dir/noise.json (noise.go): a mark is
//     written there and audited before it takes effect, one at a time, and
//     a mark that cannot be persisted is refused (503) with nothing changed;
//   - the routes view of GET /api/v1/routes and the observer fan-out of
//     finished exchanges to the store and the ramp (routes.go);
//   - the ramp gauges (rampmetrics.go): tandem_ramp_gate_{limit,value,bound}
//     {route,gate}, tandem_ramp_step_percent{route} and tandem_ramp_state
//     {route}, written at each scrape from the ramp status GET
//     /api/v1/routes shows, so the two cannot disagree;
//   - the translation of the file's schema into proxy.Options and
//     backends.Options (options.go): nothing below app imports config;
//   - the diff store, reached through DiffStore (diffstore.go), the one
//     interface it declares for it: the SQLite store.Store at
//     data_dir/store.db unless Options.Store gives another implementation,
//     which the instance then owns and closes.
//
// It must not be imported by any tandem package but cmd/tandem (and tests
// that run the whole application); flags, signals and the client verbs stay
// in cmd/tandem.
package app
