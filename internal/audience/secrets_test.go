package audience

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postie/postie/internal/store/sqlite"
)

// Keys loaded twice from one database (two nodes, or a restart) verify each other's tokens and
// key erased addresses alike; a configured key signs, the stored one still verifies.
func TestLoadKeysShared(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "postie.db"), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := LoadKeys(t.Context(), st, nil, tokNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKeys(t.Context(), st, []Key{mkKey("k1", 7)}, tokNow)
	if err != nil {
		t.Fatal(err)
	}
	if a.SigningKeyID() != "auto" || b.SigningKeyID() != "k1" {
		t.Errorf("signing keys %s and %s, want auto and k1", a.SigningKeyID(), b.SigningKeyID())
	}
	tok := Token{Purpose: PurposeUnsubscribe, Address: "ann@example.com"}
	if _, err := b.Open(a.Seal(tok), tokNow); err != nil {
		t.Errorf("a token of the stored key, opened by a node with a configured key: %v", err)
	}
	if _, err := a.Open(b.Seal(tok), tokNow); err == nil {
		t.Error("a node without k1 opened a token k1 signed")
	}
	ea, eb := a.ErasedKey("ann@example.com"), b.ErasedKey("ann@example.com")
	if ea != eb || !strings.HasPrefix(ea, ErasedPrefix) || len(ea) != len(ErasedPrefix)+64 {
		t.Errorf("erased keys %q and %q, want one erased:<64 hex>", ea, eb)
	}
	if ea == a.ErasedKey("bob@example.com") {
		t.Error("two addresses have one erased key")
	}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v", b, b)} {
		if strings.Contains(s, "\x07") || strings.Contains(s, "secret") {
			t.Errorf("formatted keys show a secret: %q", s)
		}
	}
	// Formatting shows the signing key's id and nothing else.
	if got, want := fmt.Sprint(a)+" "+fmt.Sprintf("%v %+v", b, b),
		"audience.Keys{signing: auto} audience.Keys{signing: k1} audience.Keys{signing: k1}"; got != want {
		t.Errorf("formatted keys: %q, want %q", got, want)
	}
}
