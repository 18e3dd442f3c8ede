package cli

import (
	"context"
	"errors"
	"github.com/postie/postie/internal/app"
	"net"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/doctor"
	"github.com/spf13/cobra"
)

// doctorCmd is `postie doctor`: check the database, the schema, the relay, the DNS of the
// sending domains, the clock and the free disk, and say how to fix what is wrong.
func (e *env) doctorCmd() *cobra.Command {
	var (
		dnsServer string
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the database, migrations, relay, DNS, clock and disk, and say how to fix what is wrong",
		Long: "Check this installation with its configuration (file, environment, flags): the database answers and\n" +
			"its schema is this binary's, the relay accepts a connection with TLS and the configured AUTH (no mail\n" +
			"is sent), the sending domains have SPF and DMARC records and the bounce domains an MX, the clock agrees\n" +
			"with the database's, and there is free disk. Nothing is changed. Each check prints ok, warn or FAIL,\n" +
			"with how to fix it. Exit status 0 when nothing failed (warnings included), 1 when a check failed,\n" +
			"2 when the configuration is invalid. Safe to run beside a running postie.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, src, err := e.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			o := doctor.Options{Config: cfg, Sources: src, Timeout: timeout, Parts: app.DoctorParts()}
			if dnsServer != "" {
				if _, _, err := net.SplitHostPort(dnsServer); err != nil {
					return usageError{errors.New("--dns-server: want host:port, e.g. 1.1.1.1:53")}
				}
				o.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, dnsServer)
				}}
			}
			rs := doctor.Run(cmd.Context(), o)
			doctor.Print(e.stdout, rs)
			if doctor.Failed(rs) {
				return errors.New("doctor: a check failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dnsServer, "dns-server", "", "look DNS records up on this server (host:port) instead of the system's resolver")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long each network check may take")
	config.Flags(cmd.Flags())
	return cmd
}
