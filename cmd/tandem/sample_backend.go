package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tandem-proxy/tandem/internal/samples"
)

// runSampleBackend runs one sample image-upload service (package samples)
// until SIGINT or SIGTERM: `tandem sample-backend -flavour legacy|new
// -listen 127.0.0.1:9001`. It prints the service's URL on stdout once it
// listens.
func runSampleBackend(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sample-backend", "sample-backend [-flavour legacy|new] [-listen ADDR]", stderr)
	flavour := fs.String("flavour", string(samples.Legacy), "which implementation to run: legacy or new")
	listen := fs.String("listen", "127.0.0.1:9001", "address to listen on")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	f, err := samples.ParseFlavour(*flavour)
	if err != nil {
		fmt.Fprintf(stderr, "tandem sample-backend: -flavour: %v\n", err)
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return sampleBackend(f, *listen, sigs, stdout, stderr)
}

// sampleBackend serves flavour f on addr until a signal arrives on sigs
// or the server fails.
func sampleBackend(f samples.Flavour, addr string, sigs <-chan os.Signal, stdout, stderr io.Writer) int {
	srv, err := samples.Listen(addr, f)
	if err != nil {
		fmt.Fprintf(stderr, "tandem sample-backend: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, srv.URL())
	select {
	case <-sigs:
	case <-srv.Done():
		fmt.Fprintf(stderr, "tandem sample-backend: %v\n", srv.Err())
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(stderr, "tandem sample-backend: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// runSampleCorpus writes the sample upload corpus into a directory:
// `tandem sample-corpus -out DIR [-seed N] [-large]`. (Not registered in
// verbs by this file; see runSampleBackend.)
func runSampleCorpus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sample-corpus", "sample-corpus -out DIR [-seed N] [-large]", stderr)
	out := fs.String("out", "", "directory to write the corpus into (created if need be)")
	seed := fs.Int64("seed", 1, "seed: the same seed writes the same files")
	large := fs.Bool("large", false, "add files of several MiB")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "tandem sample-corpus: -out DIR is required")
		return 2
	}
	opts := samples.CorpusOptions{Seed: *seed, Large: *large}
	if err := samples.WriteCorpus(*out, opts); err != nil {
		fmt.Fprintf(stderr, "tandem sample-corpus: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote the sample corpus (seed %d) to %s\n", *seed, *out)
	return 0
}
