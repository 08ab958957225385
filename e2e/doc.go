// Package e2e holds end-to-end tests that run the tandem binary as a user
// does (`tandem serve -config FILE`, built once by TestMain) in front of real
// third-party servers started by internal/realservers: nginx with
// image_filter, imaginary (libvips) and willnorris.com/go/imageproxy. Each
// test sends the same sequence of requests on one kept-alive client
// connection straight to a server and then through tandem, and requires the
// same statuses, headers (minus hop-by-hop ones and Date) and bodies.
//
// The corpus is testdata/corpus (made by testdata/make-corpus.sh; see
// testdata/corpus/README.txt). The package has no non-test code but this
// comment.
package e2e
