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

	"github.com/postie/postie/internal/config"
	"github.com/spf13/cobra"
)

// sendCmd is a small client of POST /v1/messages, for scripts and smoke tests. Its defaults reach
// a postie started on this machine with no configuration: only the key must be given.
func (e *env) sendCmd() *cobra.Command {
	var (
		to, cc, bcc, tags, attach      []string
		from, subject, text, html      string
		htmlFile, stream, sendAt, idem string
		replyTo, base, key             string
		template, data, locale         string
	)
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send a message through a running postie",
		Long: "Send one message through a running postie's API: a plain one (--subject with --text or --html)\n" +
			"or one rendered from a stored template (--template, with --data). The server's address and key\n" +
			"come from --url and --api-key, or POSTIE_URL and POSTIE_API_KEY, or the listen and api_key of the\n" +
			"configuration file of --config (POSTIE_CONFIG); the address defaults to POSTIE_LISTEN's, which is\n" +
			"where postie serve on this machine listens.",
		Example: `  export POSTIE_API_KEY=pk_…   # printed by postie serve at first start
  postie send --to a@example.com --subject hi --text hello
  postie send --to a@example.com --template order-shipped --data '{"order":{"id":"A-1"}}'
  postie send --to a@example.com --subject Report --html-file report.html --attach report.pdf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, fileKey := e.getenv("POSTIE_LISTEN"), e.getenv("POSTIE_API_KEY")
			if cmd.Flags().Changed(config.FileFlag) || e.getenv(config.FileEnv) != "" {
				// The server's configuration file: its listen address and API key, the
				// environment overriding them as it does for postie serve.
				cfg, err := e.load(cmd.Flags())
				if err != nil {
					return err
				}
				listen, fileKey = cfg.Listen, cfg.APIKey
			}
			if base == "" {
				base = e.getenv("POSTIE_URL")
			}
			if base == "" {
				if listen == "" {
					listen = config.Default().Listen
				}
				base = "http://" + listen
			}
			if key == "" {
				key = fileKey
			}
			if key == "" {
				return usageError{fmt.Errorf("no API key: pass --api-key or set POSTIE_API_KEY to the key postie serve printed (or one from postie keys create)")}
			}
			if htmlFile != "" {
				b, err := os.ReadFile(htmlFile)
				if err != nil {
					return err
				}
				html = string(b)
			}
			msg := map[string]any{}
			for k, v := range map[string]string{"from": from, "subject": subject, "text": text, "html": html,
				"stream": stream, "send_at": sendAt, "reply_to": replyTo, "template": template, "locale": locale} {
				if v != "" {
					msg[k] = v
				}
			}
			if data != "" {
				raw := []byte(data)
				if name, ok := strings.CutPrefix(data, "@"); ok {
					b, err := os.ReadFile(name)
					if err != nil {
						return err
					}
					raw = b
				}
				if !json.Valid(raw) {
					return usageError{fmt.Errorf("--data: not valid JSON")}
				}
				msg["data"] = json.RawMessage(raw)
			}
			for k, v := range map[string][]string{"to": to, "cc": cc, "bcc": bcc, "tags": tags} {
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
				return usageError{fmt.Errorf("--url: %w", err)}
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
	f.StringVar(&base, "url", "", "base URL of the postie API ($POSTIE_URL; default http:// + $POSTIE_LISTEN, or http://"+config.Default().Listen+")")
	f.StringVar(&key, "api-key", "", "API key ($POSTIE_API_KEY)")
	config.FlagsOnly(f) // --config: the listen address and API key of the server's configuration file
	f.StringVar(&from, "from", "", "sender (default: the server's POSTIE_FROM)")
	f.StringSliceVar(&to, "to", nil, "recipient (repeatable)")
	f.StringSliceVar(&cc, "cc", nil, "cc recipient (repeatable)")
	f.StringSliceVar(&bcc, "bcc", nil, "bcc recipient (repeatable)")
	f.StringVar(&replyTo, "reply-to", "", "Reply-To address")
	f.StringVar(&subject, "subject", "", "subject")
	f.StringVar(&text, "text", "", "plain-text body")
	f.StringVar(&html, "html", "", "HTML body")
	f.StringVar(&htmlFile, "html-file", "", "read the HTML body from this file")
	f.StringVar(&template, "template", "", "render this stored template instead of --subject/--text/--html")
	f.StringVar(&data, "data", "", "the template's data: a JSON object, or @FILE to read it from a file (optional)")
	f.StringVar(&locale, "locale", "", "render the template's variant for this language tag")
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
