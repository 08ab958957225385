// Package e2e holds the end-to-end tests: the tandem application running as
// a user runs it, in front of real HTTP backends on 127.0.0.1.
//
// Most tests run the tandem binary (`tandem serve -config FILE`, the client
// verbs, `tandem demo`), built once by TestMain (TANDEM_BUILD_TAGS, if set,
// is passed to that build); the tests that need in-process control (reload
// on demand, the admin token, the instance's addresses) open the
// application with app.Open and run it in the test process. Covered: the
// admin API and the client verbs against it, kill -9 and restart, a full
// disk, the Grafana dashboard's queries through VictoriaMetrics
// (/usr/bin/victoria-metrics), the ramp (a regression rolled back, and a
// ramp on the demo's upload route advancing with noise applied at read
// time), counts that reconcile through a
// restart, the errors clients got, the UI in headless Chromium
// (/usr/bin/chromium), memory under large uploads, SIGTERM under load, the
// demo, the client verbs as a person uses them (cli_test.go: the demo's
// pasted line, `status -watch` on a pipe and on a terminal through
// script(1), help, version, promote and rollback answers), a fleet of three
// instances on one PostgreSQL database (fleet_test.go, on a throw-away
// cluster from internal/pgtest: rules changes in force everywhere within
// 2 s, concurrent If-Match, reports and noise summed over the fleet, the
// database stopped under load, kill -9 during writes), and (build tag
// soak, `make soak`) a long soak.
//
// The real-server tests put tandem in front of third-party servers started
// by internal/realservers: nginx with image_filter, imaginary (libvips) and
// willnorris.com/go/imageproxy. Each sends the same sequence of requests on
// one kept-alive client connection straight to a server and then through
// tandem, and requires the same statuses, headers (minus hop-by-hop ones and
// Date) and bodies. Their corpus is testdata/corpus (made by
// testdata/make-corpus.sh; see testdata/corpus/README.txt).
//
// The helpers several tests share (the in-process and child-process
// instances, the CLI runner) are in helpers_test.go. The package has no
// non-test code but this comment.
package e2e
