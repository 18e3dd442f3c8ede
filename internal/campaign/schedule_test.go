package campaign

import (
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// TestNextOccurrence walks cron schedules across daylight-saving changes: a wall time in the gap
// fires when the gap ends, a repeated one fires at its first instant only.
func TestNextOccurrence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cron, zone string
		after            string
		want             []string // the next occurrences, in order
	}{
		{"every Monday 09:00 in Seoul (no DST)", "0 9 * * 1", "Asia/Seoul", "2026-12-06T00:00:00Z",
			[]string{"2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z"}},
		{"daily 02:30 in New York across spring forward", "30 2 * * *", "America/New_York", "2026-03-06T12:00:00Z",
			// 02:30 EST on the 7th; on the 8th 02:30 does not exist: 03:00 EDT (07:00Z); then 02:30 EDT.
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"every 30 minutes across spring forward", "*/30 * * * *", "America/New_York", "2026-03-08T06:15:00Z",
			// 01:30 EST, then 02:00 and 02:30 fall in the gap: one firing at 03:00 EDT, then 03:30 EDT.
			[]string{"2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"}},
		{"daily 01:30 in New York across fall back", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
			// 01:30 EDT on Nov 1st (05:30Z) only, not 01:30 EST (06:30Z); then 01:30 EST on the 2nd.
			[]string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"every 30 minutes across fall back", "*/30 * * * *", "America/New_York", "2026-11-01T05:15:00Z",
			// 01:30 EDT, then the repeated 01:00–02:00 is not run again: 02:00 EST.
			[]string{"2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z"}},
		{"from inside the repeated hour", "45 1 * * *", "America/New_York", "2026-11-01T06:10:00Z",
			// 06:10Z is 01:10 EST, the second pass: 01:45 happened in the first pass already.
			[]string{"2026-11-02T06:45:00Z"}},
		{"Europe/London spring forward at 01:00", "30 1 * * 0", "Europe/London", "2026-03-28T00:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-04-05T00:30:00Z"}},
		{"UTC by default", "@daily", "", "2026-12-06T10:00:00Z", []string{"2026-12-07T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc, err := loadZone(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tt.after)
			for i, w := range tt.want {
				got, err := nextOccurrence(tt.cron, loc, at)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(utc(w)) {
					t.Fatalf("occurrence %d after %s: got %s (%s), want %s", i, at.Format(time.RFC3339),
						got.Format(time.RFC3339), got.In(loc).Format("15:04 MST"), w)
				}
				at = got
			}
		})
	}
}

func TestCheckCron(t *testing.T) {
	t.Parallel()
	for expr, ok := range map[string]bool{
		"0 9 * * 1": true, "*/15 8-18 * * 1-5": true, "@daily": true, "@weekly": true,
		"": false, "0 9 * *": false, "0 0 9 * * 1": false, "61 9 * * 1": false, "@sometimes": false,
		"0 0 30 2 *": false, // February 30th never comes
		"nonsense":   false,
	} {
		if got := checkCron(expr) == ""; got != ok {
			t.Errorf("checkCron(%q) = %q, want ok=%v", expr, checkCron(expr), ok)
		}
	}
}

// TestDueOccurrence: missed occurrences run once (the latest) when within the grace, and are
// skipped otherwise.
func TestDueOccurrence(t *testing.T) {
	t.Parallel()
	hourly := store.Schedule{Kind: store.ScheduleCron, Cron: "0 * * * *", Timezone: "Europe/Paris"}
	tests := []struct {
		name           string
		sched          store.Schedule
		next, now      string
		wantRun        string // "" when skipped
		wantAfter      string
		wantAfterEmpty bool
	}{
		{"on time", hourly, "2026-12-06T10:00:00Z", "2026-12-06T10:00:01Z", "2026-12-06T10:00:00Z", "2026-12-06T11:00:00Z", false},
		{"three missed, the latest within grace", hourly, "2026-12-06T07:00:00Z", "2026-12-06T10:20:00Z",
			"2026-12-06T10:00:00Z", "2026-12-06T11:00:00Z", false},
		{"missed beyond grace", store.Schedule{Kind: store.ScheduleCron, Cron: "0 9 * * *", Timezone: "UTC"},
			"2026-12-04T09:00:00Z", "2026-12-06T11:00:00Z", "", "2026-12-07T09:00:00Z", false},
		{"one-off runs late", store.Schedule{Kind: store.ScheduleAt, At: utc("2026-12-01T09:00:00Z")},
			"2026-12-01T09:00:00Z", "2026-12-06T11:00:00Z", "2026-12-01T09:00:00Z", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run, ok, after, err := dueOccurrence(tt.sched, utc(tt.next), utc(tt.now), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tt.wantRun != "") || ok && !run.Equal(utc(tt.wantRun)) {
				t.Errorf("run = %s (ok %v), want %q", run, ok, tt.wantRun)
			}
			if tt.wantAfterEmpty != after.IsZero() || !tt.wantAfterEmpty && !after.Equal(utc(tt.wantAfter)) {
				t.Errorf("after = %s, want %q", after, tt.wantAfter)
			}
		})
	}
}
