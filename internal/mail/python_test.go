package mail

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonReader reads each message file named in argv with Python's email package and prints, as
// JSON, its Subject and the file name of every part that has one: with the default policy (what
// current code uses) and with compat32 (message_from_bytes without a policy), which must agree.
const pythonReader = `
import email, email.policy, json, sys
out = []
for path in sys.argv[1:]:
    raw = open(path, "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    old = email.message_from_bytes(raw)
    out.append({
        "subject": str(m["Subject"]),
        "from": str(m["From"]),
        "filenames": [p.get_filename() for p in m.walk() if p.get_filename() is not None],
        "compat32": [p.get_filename() for p in old.walk() if p.get_filename() is not None],
    })
print(json.dumps(out))
`

// TestPythonReadsNamesAndSubjects builds messages with non-ASCII attachment names, short and
// long, and long non-ASCII subjects, and checks that Python's email package reads back exactly
// what was given. Before, it read the lossy ASCII fallback ("r_sum_ 2026.txt") and a Subject
// folded right after "Subject:" with a leading space.
func TestPythonReadsNamesAndSubjects(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	korean := strings.Repeat("가나다라마바사아자차", 12) + ".txt" // 124 characters
	tests := []struct {
		subject string
		files   []string
	}{
		{"Ihr Lebenslauf", []string{"résumé 2026.txt"}},
		{"Grüße aus Köln 👋 – Ihre Bestellung ist unterwegs und kommt morgen an", []string{korean}},
		{"Ваш заказ отправлен: спасибо за покупку в нашем магазине, ждём вас снова! Ελληνικά κείμενα και 日本語の件名",
			[]string{"Übersicht der Bestellungen für das Geschäftsjahr 2026 – endgültige Fassung (überarbeitet).pdf", "📎 notes 👋🏽.txt"}},
		{strings.Repeat("한국어 제목 ", 15), []string{"=?utf-8?q?looks_encoded?=.txt", `odd "name" ü.csv`, strings.Repeat("long-ascii-name-", 12) + ".bin"}},
		{"Re: " + strings.Repeat("Rückfrage zur Lieferung ", 5), []string{"plain.txt", strings.Repeat("ü", 255)}},
		{"Quarterly report", []string{"Quarterly report for the board of directors meeting in March 2026, final version.pdf"}},
	}
	dir := t.TempDir()
	var paths []string
	for i, tc := range tests {
		m := baseMessage()
		m.From = Address{Name: "Jürgen Müller, Bücher & Co", Email: "jm@shop.example"}
		m.Subject, m.Text = tc.subject, "see attached"
		for _, f := range tc.files {
			m.Attachments = append(m.Attachments, Attachment{Filename: f, ContentType: "text/plain", Content: []byte("x")})
		}
		raw, err := Build(m)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("%d.eml", i)))
		if err := os.WriteFile(paths[i], raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(python, append([]string{"-c", pythonReader}, paths...)...).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var got []struct {
		Subject, From       string
		Filenames, Compat32 []string
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(tests) {
		t.Fatalf("python3 printed %s (%v)", out, err)
	}
	for i, tc := range tests {
		g := got[i]
		if g.Subject != tc.subject {
			t.Errorf("case %d: Python reads Subject %q, want %q", i, g.Subject, tc.subject)
		}
		if want := `"Jürgen Müller, Bücher & Co" <jm@shop.example>`; g.From != want {
			t.Errorf("case %d: Python reads From %q, want %q", i, g.From, want)
		}
		for _, names := range [][]string{g.Filenames, g.Compat32} {
			if strings.Join(names, "\n") != strings.Join(tc.files, "\n") {
				t.Errorf("case %d: Python reads file names %q, want %q", i, names, tc.files)
			}
		}
	}
}
