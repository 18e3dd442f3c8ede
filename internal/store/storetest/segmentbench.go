package storetest

import (
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// BenchSegmentContacts is the size of the segment benchmarks' audience.
const BenchSegmentContacts = 1_000_000

// BenchSegmentList is the list the segment benchmarks' contacts subscribe to.
const BenchSegmentList = "lst_0000000000000000000000news"

// BenchSegmentNow is the now of the segment benchmarks' audience.
var BenchSegmentNow = t0

// The segment benchmarks' audience, which each driver writes in bulk with its own SQL: contact i
// (0 ≤ i < BenchSegmentContacts) has the id ctc_ followed by i in 26 digits, the email ui@example.com,
// attributes {"plan": "pro" when i%5 == 0 else "free", "score": i%100, "vip": i%7 == 0,
// "signup": BenchSegmentNow − i minutes in RFC 3339, "company": "Company i%1000", "city":
// "City i%50"}, last_active_at BenchSegmentNow − (i%90) days, and is subscribed to
// BenchSegmentList when i is even (unsubscribed when i%10 == 1).

// BenchSegments measures SegmentCount over the benchmarks' audience, which seed must have
// written into s (the attributes are declared here, indexes and all, timed apart).
func BenchSegments(b *testing.B, s store.Store) {
	start := time.Now()
	for _, a := range []store.Attribute{{Name: "plan", Type: store.AttrString}, {Name: "score", Type: store.AttrNumber},
		{Name: "vip", Type: store.AttrBool}, {Name: "signup", Type: store.AttrTime}} {
		a.CreatedAt = BenchSegmentNow
		if _, err := s.AttributeDeclare(b.Context(), a); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("declaring 4 attributes (building their indexes) took %v", time.Since(start))
	day := 24 * time.Hour
	inactive := &store.Filter{Op: store.FilterCond, Field: "last_active_at", Type: store.AttrTime, Cmp: store.CmpLt, Ago: 30 * day}
	news := &store.Filter{Op: store.FilterInList, ListID: BenchSegmentList}
	pro := attrCond("plan", store.AttrString, store.CmpEq, "pro")
	for _, tc := range []struct {
		name   string
		filter *store.Filter
		want   int
	}{
		{"All", nil, BenchSegmentContacts},
		{"Pro", pro, BenchSegmentContacts / 5},
		{"Inactive30d", inactive, BenchSegmentContacts * 59 / 90},
		{"SubscribedNews", news, BenchSegmentContacts / 2},
		{"ProInactiveNews", group(store.FilterAnd, pro, inactive, news), -1},
		{"ScoreGe90", attrCond("score", store.AttrNumber, store.CmpGe, 90.0), BenchSegmentContacts / 10},
		{"VipOrNotNews", group(store.FilterOr, attrCond("vip", store.AttrBool, store.CmpEq, true), group(store.FilterNot, news)), -1},
		{"SignupLastWeek", attrCond("signup", store.AttrTime, store.CmpGe, BenchSegmentNow.Add(-7*day)), 7 * 24 * 60},
		{"CompanyContains", &store.Filter{Op: store.FilterCond, Attribute: "company", Type: store.AttrString, Cmp: store.CmpContains, Value: "y 99"}, -1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				var err error
				if n, err = s.SegmentCount(b.Context(), tc.filter, BenchSegmentNow); err != nil {
					b.Fatal(err)
				}
			}
			if tc.want >= 0 && (n < tc.want*9/10 || n > tc.want*11/10+1) {
				b.Errorf("count %d, want about %d", n, tc.want)
			}
			b.ReportMetric(float64(n), "contacts")
		})
	}
}
