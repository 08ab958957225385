package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/config"
)

// clientFlags are the flags every client verb shares.
type clientFlags struct {
	admin, config string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.admin, "admin", "http://127.0.0.1:9901", "admin API base URL")
	fs.StringVar(&c.config, "config", "tandem.yaml", "config file, to find the admin token as serve does (token_file, else env "+admin.TokenEnv+", else <data_dir>/admin.token)")
	return c
}

// apiClient calls the admin API with the bearer token.
type apiClient struct {
	base, token string
	hc          *http.Client
}

func (c *clientFlags) client() (*apiClient, error) {
	tokenFile, dataDir := "", config.Default().DataDir
	if _, err := os.Stat(c.config); err == nil {
		cfg, errs := config.Load(c.config)
		if len(errs) > 0 {
			return nil, fmt.Errorf("cannot read %s to find the admin token: %v", c.config, errs[0])
		}
		tokenFile, dataDir = cfg.Admin.TokenFile, cfg.DataDir
	}
	token, _, err := admin.ResolveToken(tokenFile, dataDir, false)
	if err != nil {
		return nil, fmt.Errorf("no admin token (set %s, or point -config at the server's config): %w", admin.TokenEnv, err)
	}
	return &apiClient{base: strings.TrimRight(c.admin, "/"), token: token, hc: newHTTPClient()}, nil
}

func newHTTPClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// do sends a request and decodes a JSON answer into out. Non-2xx answers
// become one-line errors carrying the API's message.
func (c *apiClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("invalid admin URL %q: %w", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("X-Tandem-Actor", "cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API unreachable at %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("cannot read the admin API's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error  string   `json:"error"`
			Errors []string `json:"errors"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
			if len(e.Errors) > 0 {
				msg += ": " + strings.Join(e.Errors, "; ")
			}
		}
		return fmt.Errorf("admin API refused (%d): %s", resp.StatusCode, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("cannot decode the admin API's answer: %w", err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// parseInterspersed parses flags that may come before or after positional
// arguments (tandem promote ROUTE 25 -reason x).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, true
			}
			return nil, 2, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func fail1(stderr io.Writer, verb string, err error) int {
	fmt.Fprintf(stderr, "tandem %s: %v\n", verb, err)
	return 1
}
