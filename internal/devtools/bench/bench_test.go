package bench_test

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postie/postie/internal/cli"
	"github.com/postie/postie/internal/devtools/bench"
)

// childEnv makes this test binary act as the postie executable, so the benchmarks can start it
// as their server.
const childEnv = "POSTIE_BENCH_TEST_SERVER=1"

func TestMain(m *testing.M) {
	if k, v, _ := strings.Cut(childEnv, "="); os.Getenv(k) == v {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestAccept(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rs, err := bench.Run(t.Context(), bench.Config{Binary: os.Args[0], ExtraEnv: []string{childEnv}, Out: &out,
		Duration: 200 * time.Millisecond, Clients: 2, BatchSize: 10, BatchConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Messages == 0 || rs[1].Messages == 0 {
		t.Errorf("results %+v, want two scenarios with accepted messages", rs)
	}
	bench.Print(&out, rs)
	t.Log("\n" + out.String())
}

// TestDelivery runs every phase of the delivery benchmark with tiny counts, so it keeps working.
func TestDelivery(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rs, err := bench.RunDelivery(t.Context(), bench.DeliveryConfig{Binary: os.Args[0], ExtraEnv: []string{childEnv}, Out: &out,
		Pool: 2, RelayDelay: time.Millisecond, BatchSize: 50, BatchConns: 2, Messages: 60, LargeMessages: 10,
		LatencyRate: 40, LatencyDuration: 250 * time.Millisecond, Broadcast: 200, TxRate: 50, TxMax: 5})
	bench.PrintDelivery(&out, rs)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		prefix   string
		messages int
	}{
		{"10 KB: accept", 60}, {"10 KB: delivered end to end", 60}, {"10 KB: bare SMTP client", 60},
		{"100 KB: accept", 10}, {"100 KB: delivered end to end", 10}, {"100 KB: bare SMTP client", 10},
		{"10 KB at 40/s: POST → 202", 10}, {"10 KB at 40/s: POST → relay 250", 10},
		{"10 KB broadcast: accept", 200}, {"10 KB broadcast: 200 delivered", 200}, {"2 KB transactional", -1},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d", len(rs), len(want))
	}
	for i, w := range want {
		r := rs[i]
		if !strings.HasPrefix(r.Name, w.prefix) || (w.messages >= 0 && r.Messages != w.messages) {
			t.Errorf("result %d: %q with %d messages, want %q with %d", i, r.Name, r.Messages, w.prefix, w.messages)
		}
		if r.Conns > 2 {
			// The sink counts a connection until it has closed it, as a relay does; a retired
			// connection keeps its slot until then.
			t.Errorf("result %d: %+v: relay connections above the pool of 2", i, r)
		}
	}
	if !strings.Contains(rs[2].Note, "the relay taking 1ms per message") {
		t.Errorf("bare client note %q does not name the relay delay", rs[2].Note)
	}
	if got := rs[10].Messages; got < 1 || got > 5 {
		t.Errorf("%d transactional messages timed, want 1 to 5", got)
	}
}

// TestTransactional runs the transactional benchmark briefly and checks that what it reports
// adds up, not how fast it is.
func TestTransactional(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r, err := bench.RunTransactional(t.Context(), bench.TransactionalConfig{Binary: os.Args[0], ExtraEnv: []string{childEnv},
		Pool: 2, Clients: 3, Duration: 300 * time.Millisecond, Size: 4 << 10})
	bench.PrintTransactional(&out, r)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted == 0 || r.Delivered > r.Accepted {
		t.Errorf("%d accepted, %d delivered during the run: want some accepted, no more delivered", r.Accepted, r.Delivered)
	}
	if r.Size < 3<<10 || r.Size > 6<<10 {
		t.Errorf("mean MIME size %d, want about 4 KB", r.Size)
	}
	if r.AcceptP50 <= 0 || r.AcceptP99 < r.AcceptP50 || r.SinkP50 < r.AcceptP50/2 || r.SinkP99 < r.SinkP50 {
		t.Errorf("percentiles accept %s/%s, sink %s/%s: want positive and ordered", r.AcceptP50, r.AcceptP99, r.SinkP50, r.SinkP99)
	}
	if r.ServerCPU <= 0 || r.DatabasePID != 0 {
		t.Errorf("server CPU %s, %d database processes: want some CPU and none on SQLite", r.ServerCPU, r.DatabasePID)
	}
}

// TestCampaign runs the campaign benchmark with a small audience and checks that what it
// reports adds up: every recipient once, a materialised run, resets timed.
func TestCampaign(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	const contacts = 2000
	r, err := bench.RunCampaign(t.Context(), bench.CampaignConfig{Binary: os.Args[0], Out: &out,
		Contacts: contacts, Pool: 2, TxRate: 20, ExtraEnv: []string{childEnv}})
	bench.PrintCampaign(&out, r)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Recipients != contacts || r.Delivered != contacts || r.Duplicates != 0 {
		t.Errorf("%d recipients, %d delivered, %d duplicates: want %d, %d, 0", r.Recipients, r.Delivered, r.Duplicates, contacts, contacts)
	}
	if r.Progress["sent"] != contacts {
		t.Errorf("progress %v, want %d sent", r.Progress, contacts)
	}
	if r.FirstMessage <= 0 || r.Materialised <= 0 || r.LastMessage < r.FirstMessage || r.Finished <= 0 {
		t.Errorf("first message %s, materialised %s, last %s, finished %s: want positive and ordered",
			r.FirstMessage, r.Materialised, r.LastMessage, r.Finished)
	}
	if r.Size < 8<<10 || r.Size > 16<<10 {
		t.Errorf("mean MIME size %d, want about 10 KB", r.Size)
	}
	if r.PeakRSSKiB <= 0 || r.ServerCPU <= 0 || len(r.PerNode) != 1 || r.PerNode[0] != contacts {
		t.Errorf("peak RSS %d KiB, server CPU %s, per node %v: want some, some, [%d]", r.PeakRSSKiB, r.ServerCPU, r.PerNode, contacts)
	}
}

// TestEvents runs the events benchmark briefly and checks that what it reports adds up: a mail
// and a webhook for every accepted event, percentiles ordered.
func TestEvents(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r, err := bench.RunEvents(t.Context(), bench.EventsConfig{Binary: os.Args[0], ExtraEnv: []string{childEnv},
		Pool: 2, Clients: 3, Duration: 300 * time.Millisecond})
	bench.PrintEvents(&out, r)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted == 0 || r.Mails > r.Accepted || r.Webhooks > r.Accepted {
		t.Errorf("%d accepted, %d mails and %d webhooks during the run: want some accepted, no more of the others", r.Accepted, r.Mails, r.Webhooks)
	}
	if r.AcceptP50 <= 0 || r.AcceptP99 < r.AcceptP50 || r.MailP50 < r.AcceptP50/2 || r.MailP99 < r.MailP50 ||
		r.WebhookP50 < r.AcceptP50/2 || r.WebhookP99 < r.WebhookP50 {
		t.Errorf("percentiles accept %s/%s, mail %s/%s, webhook %s/%s: want positive and ordered", r.AcceptP50, r.AcceptP99,
			r.MailP50, r.MailP99, r.WebhookP50, r.WebhookP99)
	}
	if r.MailDrain <= 0 || r.WebhookDrain <= 0 || r.WebhookRate() <= 0 || r.ServerCPU <= 0 {
		t.Errorf("drains %s and %s, webhook rate %.0f/s, server CPU %s: want all positive", r.MailDrain, r.WebhookDrain,
			r.WebhookRate(), r.ServerCPU)
	}
}

// TestSubmission runs the SMTP submission benchmark briefly, so it keeps working.
func TestSubmission(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r, err := bench.RunSubmission(t.Context(), bench.SubmissionConfig{Binary: os.Args[0], ExtraEnv: []string{childEnv},
		Clients: 2, Duration: 300 * time.Millisecond, Size: 4 << 10})
	bench.PrintSubmission(&out, r)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted == 0 || r.P50 <= 0 || r.P99 < r.P50 || r.ServerCPU <= 0 {
		t.Errorf("%+v: want accepted messages, ordered percentiles and server CPU", r)
	}
	if r.Size < 3<<10 || r.Size > 5<<10 {
		t.Errorf("MIME size %d, want about 4 KB", r.Size)
	}
}
