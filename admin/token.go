package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandem-proxy/tandem/internal/atomicfile"
)

// TokenEnv is the environment variable that holds the admin token when no
// token_file is configured.
const TokenEnv = "TANDEM_ADMIN_TOKEN"

// TokenSource says where a token came from.
type TokenSource string

const (
	FromFile      TokenSource = "token_file"
	FromEnv       TokenSource = "env"
	FromDataDir   TokenSource = "data_dir"
	FromGenerated TokenSource = "generated"
)

// ResolveToken finds the admin token as DESIGN.md says: token_file, else the
// TANDEM_ADMIN_TOKEN environment variable, else <dataDir>/admin.token; when
// create is true and none exists, a new token is generated and written there
// with mode 0600.
func ResolveToken(tokenFile, dataDir string, create bool) (string, TokenSource, error) {
	if tokenFile != "" {
		t, err := readToken(tokenFile)
		return t, FromFile, err
	}
	if t := strings.TrimSpace(os.Getenv(TokenEnv)); t != "" {
		return t, FromEnv, nil
	}
	path := filepath.Join(dataDir, "admin.token")
	t, err := readToken(path)
	if err == nil {
		return t, FromDataDir, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return "", FromDataDir, err
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", FromGenerated, fmt.Errorf("cannot generate admin token: %w", err)
	}
	t = hex.EncodeToString(b[:])
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", FromGenerated, fmt.Errorf("cannot create data_dir: %w", err)
	}
	// Created whole or not at all (a crash never leaves a short token), and
	// never over a token another process has just written: that one wins.
	if err := atomicfile.Create(path, []byte(t+"\n"), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			t, err := readToken(path)
			return t, FromDataDir, err
		}
		return "", FromGenerated, fmt.Errorf("cannot write admin token: %w", err)
	}
	return t, FromGenerated, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read admin token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 {
		return "", fmt.Errorf("admin token in %s is too short (want at least 16 characters)", path)
	}
	return t, nil
}

// tokenOK compares a presented Authorization header in constant time.
func tokenOK(header []byte, token string) bool {
	const prefix = "Bearer "
	if len(header) < len(prefix) || !strings.EqualFold(string(header[:len(prefix)]), prefix) {
		return false
	}
	got := header[len(prefix):]
	return subtle.ConstantTimeCompare(got, []byte(token)) == 1
}
