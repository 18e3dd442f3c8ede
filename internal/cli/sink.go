package cli

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/spf13/cobra"
)

// sinkCmd runs a loopback SMTP relay that accepts and prints what it gets: a stand-in for a
// real relay when trying postie out, with chosen recipients refused to see failures.
func (e *env) sinkCmd() *cobra.Command {
	var listen, hooks, hookSecret string
	var rejects []string
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Run a local SMTP relay that prints what it receives (for trying postie out)",
		Long: "Run a plaintext SMTP server that accepts every message, prints one line per message and\n" +
			"keeps nothing. Point postie at it with POSTIE_SMTP_URL=smtp://LISTEN?tls=none.\n\n" +
			"--reject ADDRESS=REPLY refuses that recipient at RCPT with REPLY, e.g.\n" +
			"  --reject 'nobody@example.com=550 5.1.1 User unknown'   (a hard bounce: postie suppresses it)\n" +
			"  --reject 'busy@example.com=451 4.3.0 Try again later'  (temporary: postie retries)\n\n" +
			"--webhooks ADDR also receives webhooks over HTTP on ADDR and prints each one (its type, webhook-id\n" +
			"and payload); with --webhook-secret whsec_… it checks each one's Standard Webhooks signature and\n" +
			"answers 401 to a bad one. postie reaches a receiver on this machine over http:// only with\n" +
			"POSTIE_WEBHOOK_ALLOW=loopback and POSTIE_WEBHOOK_ALLOW_HTTP=true. --listen '' runs no SMTP server.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			refuse := map[string]smtpsink.Action{}
			for _, r := range rejects {
				addr, reply, ok := strings.Cut(r, "=")
				a, err := parseReply(reply)
				if !ok || addr == "" || err != nil {
					return usageError{fmt.Errorf("--reject %q: want ADDRESS=CODE [X.Y.Z] TEXT, e.g. nobody@example.com=550 5.1.1 User unknown", r)}
				}
				refuse[strings.ToLower(addr)] = a
			}
			if listen == "" && hooks == "" {
				return usageError{fmt.Errorf("--listen '' runs no SMTP server: give --webhooks ADDR, or an address to listen on")}
			}
			var mu sync.Mutex
			if hooks != "" {
				srv, addr, err := listenHooks(hooks, &hookSink{secret: hookSecret, out: e.stdout, mu: &mu, now: time.Now})
				if err != nil {
					return err
				}
				defer srv.Close()
				fmt.Fprintf(e.stdout, "webhook receiver listening; point an endpoint at\n  http://%s/\n", addr)
			}
			if listen == "" {
				<-cmd.Context().Done()
				return nil
			}
			sink, err := smtpsink.Start(smtpsink.Options{
				Addr: listen,
				Script: func(s smtpsink.Step) smtpsink.Action {
					if s.Stage == smtpsink.StageRcpt {
						if a, ok := refuse[strings.ToLower(s.To)]; ok {
							mu.Lock()
							fmt.Fprintf(e.stdout, "refused  %s: %d %s %s\n", s.To, a.Code, a.Enhanced, a.Text)
							mu.Unlock()
							return a
						}
					}
					return smtpsink.Action{}
				},
				OnMessage: func(m smtpsink.Message) {
					mu.Lock()
					defer mu.Unlock()
					fmt.Fprintf(e.stdout, "accepted %s → %s (%d bytes, Message-ID <%s>)\n", m.From, strings.Join(m.To, ", "), m.Size, m.MessageID)
				},
			})
			if err != nil {
				return err
			}
			defer sink.Close()
			fmt.Fprintf(e.stdout, "SMTP sink listening; point postie at it with\n  POSTIE_SMTP_URL='%s'\n", sink.URL())
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:2525", "address to listen on")
	cmd.Flags().StringArrayVar(&rejects, "reject", nil, "ADDRESS=REPLY: refuse that recipient with that reply (repeatable)")
	cmd.Flags().StringVar(&hooks, "webhooks", "", "also receive webhooks over HTTP on this address (e.g. 127.0.0.1:8025) and print them")
	cmd.Flags().StringVar(&hookSecret, "webhook-secret", "", "whsec_…: check each webhook's signature with this endpoint secret")
	return cmd
}

// parseReply reads "550 5.1.1 User unknown" into an Action.
func parseReply(s string) (smtpsink.Action, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return smtpsink.Action{}, fmt.Errorf("empty reply")
	}
	code, err := strconv.Atoi(fields[0])
	if err != nil || code < 400 || code > 599 {
		return smtpsink.Action{}, fmt.Errorf("reply code must be 4xx or 5xx")
	}
	a := smtpsink.Action{Code: code, Enhanced: "-"}
	rest := fields[1:]
	if len(rest) > 0 && strings.Count(rest[0], ".") == 2 && rest[0][0] == fields[0][0] {
		a.Enhanced, rest = rest[0], rest[1:]
	}
	a.Text = strings.Join(rest, " ")
	if a.Text == "" {
		a.Text = "refused"
	}
	return a, nil
}
