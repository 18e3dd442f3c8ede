package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// sendCmd is a small client of POST /v1/messages, for scripts and smoke tests.
func (e *env) sendCmd() *cobra.Command {
	var (
		to, cc, bcc, tags, attach      []string
		from, subject, text, html      string
		htmlFile, stream, sendAt, idem string
		replyTo                        string
	)
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send a message through a running postie (POSTIE_URL, POSTIE_API_KEY)",
		Example: `  POSTIE_API_KEY=pk_… postie send --from me@example.com --to a@example.com --subject hi --text hello
  postie send --to a@example.com --subject Report --html-file report.html --attach report.pdf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base := e.getenv("POSTIE_URL")
			if base == "" {
				base = "http://127.0.0.1:8080"
			}
			key := e.getenv("POSTIE_API_KEY")
			if key == "" {
				return usageError{fmt.Errorf("POSTIE_API_KEY is not set: use the key postie serve printed")}
			}
			if htmlFile != "" {
				b, err := os.ReadFile(htmlFile)
				if err != nil {
					return err
				}
				html = string(b)
			}
			msg := map[string]any{"to": to, "subject": subject}
			for k, v := range map[string]string{"from": from, "text": text, "html": html, "stream": stream, "send_at": sendAt, "reply_to": replyTo} {
				if v != "" {
					msg[k] = v
				}
			}
			for k, v := range map[string][]string{"cc": cc, "bcc": bcc, "tags": tags} {
				if len(v) > 0 {
					msg[k] = v
				}
			}
			var atts []map[string]string
			for _, p := range attach {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				atts = append(atts, map[string]string{
					"filename": filepath.Base(p), "content_type": mime.TypeByExtension(filepath.Ext(p)),
					"content": base64.StdEncoding.EncodeToString(b),
				})
			}
			if atts != nil {
				msg["attachments"] = atts
			}
			body, err := json.Marshal(msg)
			if err != nil {
				return err
			}
			u, err := url.JoinPath(base, "/v1/messages")
			if err != nil {
				return usageError{fmt.Errorf("POSTIE_URL: %w", err)}
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			if idem != "" {
				req.Header.Set("Idempotency-Key", idem)
			}
			client := &http.Client{Timeout: 60 * time.Second}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("postie at %s: %w", base, err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			fmt.Fprintln(e.stdout, strings.TrimSpace(string(out)))
			if resp.StatusCode >= 300 {
				return fmt.Errorf("postie answered %s", resp.Status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "sender (default: the server's POSTIE_FROM)")
	f.StringSliceVar(&to, "to", nil, "recipient (repeatable)")
	f.StringSliceVar(&cc, "cc", nil, "cc recipient (repeatable)")
	f.StringSliceVar(&bcc, "bcc", nil, "bcc recipient (repeatable)")
	f.StringVar(&replyTo, "reply-to", "", "Reply-To address")
	f.StringVar(&subject, "subject", "", "subject")
	f.StringVar(&text, "text", "", "plain-text body")
	f.StringVar(&html, "html", "", "HTML body")
	f.StringVar(&htmlFile, "html-file", "", "read the HTML body from this file")
	f.StringSliceVar(&attach, "attach", nil, "attach this file (repeatable)")
	f.StringSliceVar(&tags, "tag", nil, "tag (repeatable)")
	f.StringVar(&stream, "stream", "", "transactional (default) or broadcast")
	f.StringVar(&sendAt, "send-at", "", "deliver at this RFC 3339 time")
	f.StringVar(&idem, "idempotency-key", "", "Idempotency-Key header")
	return cmd
}

// redact hides the password of a database URL for printing.
func redact(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
