package admin

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The token comes from token_file, else the environment, else data_dir,
// where a generated one is written with mode 0600 and read back next time.
func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(TokenEnv, "")
	tok, src, err := ResolveToken("", dir, true)
	if err != nil || src != FromGenerated || len(tok) < 32 {
		t.Fatalf("generate: %q %s %v", tok, src, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v %v", fi.Mode(), err)
	}
	again, src, err := ResolveToken("", dir, true)
	if err != nil || again != tok || src != FromDataDir {
		t.Fatalf("second start: %q %s %v", again, src, err)
	}
	t.Setenv(TokenEnv, "from-the-environment-123")
	if got, src, _ := ResolveToken("", dir, true); got != "from-the-environment-123" || src != FromEnv {
		t.Fatalf("env: %q %s", got, src)
	}
	f := filepath.Join(dir, "tok")
	os.WriteFile(f, []byte("from-a-file-0123456789\n"), 0o600)
	if got, src, _ := ResolveToken(f, dir, true); got != "from-a-file-0123456789" || src != FromFile {
		t.Fatalf("file: %q %s", got, src)
	}
	os.WriteFile(f, []byte("short\n"), 0o600)
	if _, _, err := ResolveToken(f, dir, true); err == nil {
		t.Fatal("a short token was accepted")
	}
	t.Setenv(TokenEnv, "")
	if _, _, err := ResolveToken("", t.TempDir(), false); err == nil {
		t.Fatal("client verbs must not generate a token")
	}
}

// Several starts generating the token at once (serve and a client verb, or
// two serves racing) agree on one token: the first one written whole wins
// and the others read it, instead of failing on the existing file or reading
// it half-written.
func TestResolveTokenConcurrentGenerate(t *testing.T) {
	t.Setenv(TokenEnv, "")
	dir := filepath.Join(t.TempDir(), "data")
	const n = 8
	toks := make([]string, n)
	errs := make([]error, n)
	srcs := make([]TokenSource, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], srcs[i], errs[i] = ResolveToken("", dir, true)
		}()
	}
	wg.Wait()
	generated := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if toks[i] != toks[0] {
			t.Errorf("start %d got token %q, start 0 %q", i, toks[i], toks[0])
		}
		if srcs[i] == FromGenerated {
			generated++
		}
	}
	if generated != 1 {
		t.Errorf("%d starts say they generated the token, want 1", generated)
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil || string(b) != toks[0]+"\n" {
		t.Errorf("admin.token holds %q (%v), want %q", b, err, toks[0])
	}
}

func TestTokenOK(t *testing.T) {
	const tok = "0123456789abcdef"
	for _, c := range []struct {
		h    string
		want bool
	}{
		{"Bearer " + tok, true},
		{"bearer " + tok, true},
		{"Bearer " + tok + "x", false},
		{"Bearer ", false},
		{tok, false},
		{"", false},
		{"Basic " + tok, false},
	} {
		if got := tokenOK([]byte(c.h), tok); got != c.want {
			t.Errorf("tokenOK(%q) = %v", c.h, got)
		}
	}
}
