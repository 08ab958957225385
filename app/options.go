package app

import (
	"path/filepath"

	"github.com/tandem-proxy/tandem/backends"
	"github.com/tandem-proxy/tandem/config"
	"github.com/tandem-proxy/tandem/proxy"
)

// backendOptions are the backends.Options of one configured backend.
func backendOptions(cfg *config.Config, bc *config.Backend) backends.Options {
	return backends.Options{
		URLs:               bc.AllURLs(),
		Timeout:            bc.Timeout.D(),
		MaxConns:           bc.MaxConns,
		ShadowConns:        cfg.Limits.ShadowConcurrency,
		BreakerFailures:    bc.Breaker.ConsecutiveFailures,
		BreakerOpenFor:     bc.Breaker.OpenFor.D(),
		DisableRawSyscalls: !cfg.Client.RawSyscalls,
	}
}

// proxyOptions are the proxy.Options the config file's limits and client
// sections describe; the caller adds backends, rules, observer and the rest.
func proxyOptions(cfg *config.Config) proxy.Options {
	l, c := cfg.Limits, cfg.Client
	return proxy.Options{
		SpoolDir:             filepath.Join(cfg.DataDir, "spool"),
		MaxBody:              int64(l.MaxBody),
		SpoolMemory:          int64(l.SpoolMemory),
		SpoolDisk:            int64(l.SpoolDisk),
		ShadowConcurrency:    l.ShadowConcurrency,
		CompareMaxBody:       int64(l.CompareMaxBody),
		CompareMemory:        int64(l.CompareMemory),
		CompareWorkers:       l.CompareWorkers,
		CompareQueue:         l.CompareQueue,
		DecodeMemory:         int64(l.DecodeMemory),
		HeaderTimeout:        c.HeaderTimeout.D(),
		BodyTimeout:          c.BodyTimeout.D(),
		WriteTimeout:         c.WriteTimeout.D(),
		IdleTimeout:          c.IdleTimeout.D(),
		MaxHeader:            int(c.MaxHeader),
		UnderscoresInHeaders: c.UnderscoresInHeaders,
		DisableRawSyscalls:   !c.RawSyscalls,
	}
}
