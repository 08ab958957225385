// Package exchange owns the one model of a finished shadow exchange (what the
// data plane hands to the diff store and the ramp) and the closed set of
// shadow outcomes (the outcome label of tandem_shadow_total, and the skip
// reasons of the store's counters and reports).
//
// It is a leaf: it imports only compare (for the responses and the result it
// carries) and the standard library, never the proxy, the store, the ramp,
// config or network code.
package exchange
