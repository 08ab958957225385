// Package proxy is tandem's data plane: the fasthttp server and handler,
// routing, header hygiene, the request-body tee and spool, shadow dispatch on
// a bounded worker pool, response capture, and the hand-off of both responses
// to the comparer.
//
// Ownership (fasthttp's law): nothing from a fasthttp.RequestCtx survives the
// handler unless copied. The shadow job gets its own Request (headers copied)
// and a spool that owns the body bytes before the handler returns; the handler
// never waits on shadow work. The one thing used after the handler returns is
// the served response's body stream, which fasthttp itself reads and closes.
//
// Counting: every answer given to a client on a matched route — the
// backend's, tandem's own 502 and 504, and its refusals (a body too large,
// too slow or malformed; a request it cannot forward) — adds to exactly one
// cell of the route's answerCounts (served by legacy, new or tandem ×
// mirrored × error). tandem_requests_total{route,served_by} and Counters
// are read from those cells, so requests ≥ mirrored in every snapshot and
// between any two. A request tandem refused itself, or could not send for
// its own reasons, is charged to no breaker (backends.ErrNotTried) and to
// no backend error.
//
// The rule above all: the shadow never hurts the served request. Every shadow
// failure, over-budget body, full queue or open breaker is counted in
// tandem_shadow_total{outcome} and the served request goes on untouched.
//
// Shadow copies run on a shadowPool (shadowpool.go): limits.shadow_concurrency
// workers behind an admission bound that counts queued and running jobs
// together, so a job past it is refused at once (queue_full) and the handler
// never waits. The pool owns its goroutines: the Server starts it in New and
// stops it in Shutdown, which waits for admitted jobs within what is left of
// the deadline and counts the rest in tandem_shadow_abandoned_total; its
// count of admitted jobs is tandem_shadow_in_flight.
//
// Comparison work is kept apart from both (comparequeue.go): a shadow worker
// only sends the copies; the pair is compared once the shadow exchange and
// the served response (read by the client) are both done, by whichever
// finishes last handing it to a bounded queue of limits.compare_workers
// goroutines (fewer than the CPUs). A full queue drops the pair
// (tandem_compare_dropped_total); image decodes share one byte budget
// (limits.decode_memory, also the admin heat map's), and a pair over a
// work bound compares by hash and size (tandem_compare_limited_total).
// A Server is built from its own Options (every zero value documented, the
// defaults those of the config file) and creates its metrics in the set it
// is given; nothing is registered globally. Finished comparisons leave as
// exchange.Exchange through the one-method Observer it declares. It must
// not import config (the file schema, translated by package app), the
// store, the ramp or admin.
package proxy
