package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourSections returns the shell blocks of each section of the README's tour, keyed by the
// section's first heading line.
func tourSections(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start, end := strings.Index(readme, "## A five-minute tour"), strings.Index(readme, "## Documentation")
	if start < 0 || end < start {
		t.Fatal("README.md has no tour between '## A five-minute tour' and '## Documentation'")
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```")
	out := map[string][]string{}
	for _, sec := range regexp.MustCompile("\n#{2,3} ").Split("\n"+readme[start:end], -1)[1:] {
		title, _, _ := strings.Cut(sec, "\n")
		for _, m := range block.FindAllStringSubmatch(sec, -1) {
			out[title] = append(out[title], m[1])
		}
	}
	return out
}

// TestReadmeTour runs the README's tour as a reader would: the server started as its first
// block says (make run, the same settings), and every other block of the section run in order by
// one `bash -e`, as the tour tells, with POSTIE_URL and POSTIE_API_KEY set to what postie printed.
// A step that fails (curl --fail-with-body on an error status) fails the test.
func TestReadmeTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found: the README tour uses it")
	}
	sections := tourSections(t)
	templates, err := filepath.Abs("../../examples/templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		section string
		env     func(relay string) []string // the settings of the section's make run
		want    []string                    // in the steps' output
	}{
		{"A five-minute tour", func(string) []string { return nil },
			[]string{`"to":["Ada <ada@example.com>"]`, "Content-Type: multipart/alternative", `"location":"body.messages[1].to[0]"`,
				`"status":"scheduled"`, `"status":"cancelled"`, "refused, as it should be"}},
		{"Templates: send data, not HTML", func(string) []string { return []string{"POSTIE_TEMPLATES_DIR=" + templates} },
			[]string{`"name":"order-shipped"`, `"subject":"Your order A-1 has shipped"`, `"location":"body.data/order/id"`,
				`"name":"welcome"`, "refused, as it should be"}},
		{"Through a relay: a failure, and its replay", func(relay string) []string {
			return []string{"POSTIE_SMTP_URL=smtp://" + relay + "?tls=none"}
		}, []string{"refused  nobody@example.com: 550 5.1.1 User unknown", `"reason":"hard_bounce"`, `"retried":1`}},
		{"Campaigns: a newsletter to a list, scheduled, and its progress", func(string) []string {
			return []string{"POSTIE_POSTAL_ADDRESS=Shop Ltd, 1 Main St, Springfield", "POSTIE_TEMPLATES_DIR=" + templates}
		}, []string{`"state":"scheduled"`, `"state":"finished"`, `"sent":2`, `"unsubscribed":1`,
			`"location":"body.schedule.timezone"`, "refused, as it should be"}},
		{"Events: a trigger sends the mail, a webhook reports it", func(string) []string {
			return []string{"POSTIE_WEBHOOK_ALLOW=loopback", "POSTIE_WEBHOOK_ALLOW_HTTP=true"}
		}, []string{`"duplicate":true`, "webhook  event.triggered whd_", "webhook  message.sent whd_", "signature ok",
			`"subject":"Receipt for order A-1"`, `"event_id":"evt_`, `"status":"delivered"`, `"recipient":"ada@example.com"`}},
		{"Legacy apps: send over SMTP", func(string) []string { return nil },
			[]string{"sent over SMTP", `"tags":["orders","smtp"]`, `"metadata":{"order_id":"A-1"}`}},
		{"Running it for real: a key per service, metrics, a backup", func(string) []string { return nil },
			[]string{`this API key lacks the scope \"read\"`, `"location":"body.from"`, "429", `postie_messages_total{outcome="accepted"`,
				"integrity check ok"}},
	} {
		t.Run(tc.section, func(t *testing.T) {
			t.Parallel()
			blocks := sections[tc.section]
			if len(blocks) < 2 {
				t.Fatalf("section %q has %d shell blocks", tc.section, len(blocks))
			}
			// The blocks before the section's make run are run before the server starts (the
			// relay section starts its sink there), the others after; variables set before are
			// carried over, as in the reader's one shell.
			var before, after []string
			if tc.section != "A five-minute tour" {
				// The reader goes on in the shell of the first section, with its helpers.
				for _, b := range sections["A five-minute tour"] {
					if strings.Contains(b, "api()") {
						after = append(after, strings.TrimPrefix(b, "bash -e\n"))
					}
				}
			} else if !strings.Contains(blocks[0], "make run") {
				t.Fatalf("the tour does not start with make run:\n%s", blocks[0])
			}
			server := false
			for _, b := range blocks {
				switch {
				case strings.Contains(b, "make run"):
					server = true // started below as the block says
				case server:
					after = append(after, strings.TrimPrefix(b, "bash -e\n"))
				default:
					before = append(before, b)
				}
			}
			dir := t.TempDir()
			relay, hooks, submission, admin := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
			// The steps call bin/postie, which make run builds.
			if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(binary(t), filepath.Join(dir, "bin", "postie")); err != nil {
				t.Fatal(err)
			}
			// Output goes to a file, not a pipe: a sink the steps leave in the background keeps
			// writing to it after its shell has exited.
			outFile, err := os.Create(filepath.Join(dir, "tour.out"))
			if err != nil {
				t.Fatal(err)
			}
			defer outFile.Close()
			output := func() string { b, _ := os.ReadFile(outFile.Name()); return string(b) }
			steps := func(script string, env ...string) {
				t.Helper()
				cmd := exec.Command("bash", "-e")
				cmd.Dir = dir
				cmd.Stdin = strings.NewReader(script)
				cmd.Stdout, cmd.Stderr = outFile, outFile
				cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "RELAY=" + relay, "HOOKS=" + hooks, "SUBMISSION=" + submission,
					"ADMIN=" + admin, "POSTIE_ADMIN_LISTEN=127.0.0.1:0"}, env...)
				// In a process group of its own, ended with the test: a step that fails leaves
				// nothing running.
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
				if err := cmd.Wait(); err != nil {
					t.Fatalf("a step of the tour failed: %v\n%s", err, output())
				}
			}
			if len(before) > 0 {
				vars := regexp.MustCompile(`(?m)^([A-Z_]+)=`).FindAllStringSubmatch(strings.Join(before, "\n"), -1)
				names := make([]string, len(vars))
				for i, v := range vars {
					names[i] = v[1]
				}
				steps(strings.Join(before, "\n") + "\ndeclare -p " + strings.Join(names, " ") + " > tour.vars\n")
				after = append([]string{"source tour.vars"}, after...)
				// The reader starts postie once the sink has said where it listens.
				waitFor(t, 20*time.Second, func() error {
					if !strings.Contains(output(), "POSTIE_SMTP_URL=") {
						return fmt.Errorf("the steps before make run have not finished: %s", output())
					}
					return nil
				})
			}
			p := start(t, dir, append([]string{"POSTIE_FROM=Shop <news@shop.example>", "POSTIE_SUBMISSION_LISTEN=" + submission,
				"POSTIE_ADMIN_LISTEN=" + admin}, tc.env(relay)...)...)
			key := p.waitOut(keyLine)[1]
			steps(strings.Join(after, "\n"), "POSTIE_URL=http://"+p.addr, "POSTIE_API_KEY="+key)
			out := output()
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the steps' output lacks %s:\n%s", w, out)
				}
			}
			p.stop()
		})
	}
}
