package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-proxy/tandem/admin"
	"github.com/tandem-proxy/tandem/config"
)

// AdminEnv is the environment variable that gives client verbs the admin
// API's address when -admin is not set.
const AdminEnv = "TANDEM_ADMIN"

// defaultAdmin is the admin address when nothing else names one (the
// default of admin.listen).
const defaultAdmin = "http://127.0.0.1:9901"

// defaultConfig is read, when it exists, if -config is not given.
const defaultConfig = "tandem.yaml"

// clientFlags are the flags every client verb shares.
type clientFlags struct {
	admin, config string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.admin, "admin", "", "admin API address, a URL or host:port (default: env "+AdminEnv+", else admin.listen of -config, else "+defaultAdmin+")")
	fs.StringVar(&c.config, "config", "", "the server's config file: gives admin.listen and the admin token as serve finds it (token_file, else env "+admin.TokenEnv+", else <data_dir>/admin.token); default ./"+defaultConfig+" when it exists")
	return c
}

// apiClient calls the admin API with the bearer token.
type apiClient struct {
	base, token string
	hc          *http.Client
}

// client resolves the admin address and the token. The address: -admin,
// else $TANDEM_ADMIN, else admin.listen of the config file, else
// defaultAdmin. The config file is -config (which must exist), else
// ./tandem.yaml when it exists.
func (c *clientFlags) client() (*apiClient, error) {
	cfgPath, explicit := c.config, c.config != ""
	if !explicit {
		cfgPath = defaultConfig
	}
	var cfg *config.Config
	if _, err := os.Stat(cfgPath); err == nil {
		var errs []error
		cfg, errs = config.Load(cfgPath)
		if len(errs) > 0 {
			return nil, fmt.Errorf("cannot read %s for the admin address and token: %v", cfgPath, errs[0])
		}
	} else if explicit {
		return nil, &usageError{fmt.Errorf("-config %s: %w", cfgPath, unwrapPathError(err))}
	}
	base, err := c.adminBase(cfg, cfgPath)
	if err != nil {
		return nil, err
	}
	tokenFile, dataDir := "", config.Default().DataDir
	if cfg != nil {
		tokenFile, dataDir = cfg.Admin.TokenFile, cfg.DataDir
	}
	token, _, err := admin.ResolveToken(tokenFile, dataDir, false)
	if err != nil {
		return nil, fmt.Errorf("no admin token (set %s, or point -config at the server's config): %w", admin.TokenEnv, err)
	}
	return &apiClient{base: base, token: token, hc: newHTTPClient()}, nil
}

// adminBase picks the admin address by precedence and normalizes it.
func (c *clientFlags) adminBase(cfg *config.Config, cfgPath string) (string, error) {
	if c.admin != "" {
		return adminURL("-admin", c.admin)
	}
	if v := os.Getenv(AdminEnv); v != "" {
		return adminURL(AdminEnv, v)
	}
	if cfg != nil {
		return adminURL("admin.listen of "+cfgPath, dialable(cfg.Admin.Listen))
	}
	return defaultAdmin, nil
}

// dialable turns a listen address into one a client can dial: a wildcard
// or empty host (":9901", "0.0.0.0:9901", "[::]:9901") becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// adminURL normalizes an admin address given as a URL (http://h:p,
// https://h:p/prefix) or a bare host:port, and explains a malformed one in
// one line naming where it came from.
func adminURL(from, v string) (string, error) {
	s := strings.TrimSpace(v)
	bad := func(why string) (string, error) {
		return "", &usageError{fmt.Errorf("%s %q is not an admin address: %s (want host:port or http://host:port)", from, v, why)}
	}
	if s == "" {
		return bad("it is empty")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("it does not parse as a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the scheme must be http or https, not " + u.Scheme)
	case u.Host == "":
		return bad("it has no host")
	case u.User != nil:
		return bad("it must not carry a user name or password (the token comes from " + admin.TokenEnv + " or the config)")
	case u.RawQuery != "" || u.Fragment != "":
		return bad("it must not have a query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("the port must be 1..65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("the port is empty")
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
		// A negative number is a positional (promote upload -1 is then
		// refused for its range), not an unknown flag.
		if len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
			if _, err := strconv.ParseFloat(args[0], 64); err == nil {
				pos = append(pos, args[0])
				args = args[1:]
				continue
			}
		}
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

// usageError is a mistake in what the user typed or set (a malformed
// -admin or TANDEM_ADMIN, a -config that does not exist): exit 2, like a
// bad flag.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// fail1 prints err as the verb's one-line error and returns the exit code:
// 2 for a *usageError, else 1.
func fail1(stderr io.Writer, verb string, err error) int {
	fmt.Fprintf(stderr, "tandem %s: %v\n", verb, err)
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}
