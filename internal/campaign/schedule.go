package campaign

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/adhocore/gronx"

	"github.com/postie/postie/internal/store"
)

// Recurring schedules. A cron expression is matched against the wall clock of the campaign's
// time zone, not against UTC: "0 9 * * 1" is nine in the morning in Seoul every Monday, whatever
// the offset that day. gronx finds the next matching wall time on a clock without daylight
// saving (UTC used as a plain calendar); placing that wall time in the zone then has two
// special cases:
//
//   - A wall time that does not exist (the gap when clocks move forward) fires right after the
//     gap, at the instant of the change: 02:30 on a night that skips from 02:00 to 03:00 fires
//     at 03:00. Several times inside one gap all fire there, once.
//   - A wall time that happens twice (clocks moving back) fires at its first instant only: the
//     next occurrence is looked for after that wall time, so the repeated hour is not run again.
//
// An occurrence is an instant in UTC; runs are unique on it (store.RunCreateParams).

// cronMacros are the descriptors accepted for a five-field expression.
var cronMacros = map[string]bool{"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true}

// maxCronSearch bounds the wall times looked at for one occurrence: only a DST change or a
// repeated hour makes one wall time be passed over, so a few suffice.
const maxCronSearch = 100

// checkCron reports what is wrong with a cron expression ("" when nothing): five fields,
// minute first (or a descriptor such as @daily), matching some time.
func checkCron(expr string) string {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return "required for a cron schedule, e.g. \"0 9 * * 1\" (minute hour day-of-month month day-of-week)"
	case strings.HasPrefix(expr, "@"):
		if !cronMacros[strings.ToLower(expr)] {
			return "unknown descriptor: use @yearly, @monthly, @weekly, @daily or @hourly, or five fields"
		}
	case len(strings.Fields(expr)) != 5:
		return fmt.Sprintf("want five fields (minute hour day-of-month month day-of-week), got %d", len(strings.Fields(expr)))
	}
	if !gronx.IsValid(expr) {
		return "not a valid cron expression"
	}
	if _, err := nextWall(expr, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return "matches no date"
	}
	return ""
}

// loadZone returns the IANA zone name ("" is UTC); "Local" is refused, since it depends on the
// machine.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, errors.New("not an IANA time zone name")
	}
	return time.LoadLocation(name)
}

// nextWall is the first wall time matching expr strictly after wall, both read on a clock
// without daylight saving (UTC fields as a plain calendar).
func nextWall(expr string, wall time.Time) (time.Time, error) {
	return gronx.NextTickAfter(expr, wall, false)
}

// wallOf is t's wall clock in loc, as UTC fields.
func wallOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// placeWall is the instant at which the wall time w (UTC fields) of loc fires: its first
// instant, or for a time inside a gap the instant the gap ends.
func placeWall(w time.Time, loc *time.Location) time.Time {
	x := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	if wallOf(x, loc).Equal(w) {
		// It exists; when it exists twice, take the earlier instant. The other candidate
		// is w read with the offset of the zone before x's.
		start, _ := x.ZoneBounds()
		if !start.IsZero() {
			_, before := start.Add(-time.Nanosecond).Zone()
			if y := w.Add(-time.Duration(before) * time.Second); y.Before(x) && wallOf(y, loc).Equal(w) {
				return y.In(time.UTC)
			}
		}
		return x.In(time.UTC)
	}
	// In a gap: time.Date chose an instant in one of the zones around it; the change between
	// them is the start of the later zone.
	start, end := x.ZoneBounds()
	if wallOf(x, loc).After(w) {
		return start.In(time.UTC)
	}
	return end.In(time.UTC)
}

// nextOccurrence is the first occurrence of expr in loc strictly after t.
func nextOccurrence(expr string, loc *time.Location, t time.Time) (time.Time, error) {
	w := wallOf(t, loc)
	for range maxCronSearch {
		var err error
		if w, err = nextWall(expr, w); err != nil {
			return time.Time{}, err
		}
		if at := placeWall(w, loc); at.After(t) {
			return at, nil
		}
		// That wall time's instant is not after t: t is in the repeat of an hour whose first
		// pass had it (or past a gap's end), so look further.
	}
	return time.Time{}, errors.New("no occurrence found")
}

// scheduleNext is the first occurrence of a campaign's schedule after t: the time of an "at"
// schedule when it is after t, the next cron occurrence, zero for none.
func scheduleNext(s store.Schedule, t time.Time) (time.Time, error) {
	switch s.Kind {
	case store.ScheduleAt:
		if s.At.After(t) {
			return s.At.UTC(), nil
		}
		return time.Time{}, nil
	case store.ScheduleCron:
		loc, err := loadZone(s.Timezone)
		if err != nil {
			return time.Time{}, err
		}
		return nextOccurrence(s.Cron, loc, t)
	}
	return time.Time{}, nil
}

// dueOccurrence decides what a campaign scheduled for next (at or before now) runs: the latest
// occurrence from next up to now, when it is at most grace old (missed ones before it are not
// run: one run stands for all). ok is false when every occurrence up to now is older than
// grace: they are skipped. after is the first occurrence after now, zero for a schedule with no
// more.
func dueOccurrence(s store.Schedule, next, now time.Time, grace time.Duration) (run time.Time, ok bool, after time.Time, err error) {
	if s.Kind != store.ScheduleCron {
		// One occurrence: an "at" (or "now") campaign runs when it is found due, however late:
		// skipping it would lose the campaign.
		return next, true, time.Time{}, nil
	}
	loc, err := loadZone(s.Timezone)
	if err != nil {
		return time.Time{}, false, time.Time{}, err
	}
	// Only occurrences within grace of now can run; start looking there.
	occ := next
	if from := now.Add(-grace); occ.Before(from) {
		if occ, err = nextOccurrence(s.Cron, loc, from.Add(-time.Nanosecond)); err != nil {
			return time.Time{}, false, time.Time{}, err
		}
	}
	for !occ.After(now) {
		run, ok = occ, true
		if occ, err = nextOccurrence(s.Cron, loc, occ); err != nil {
			return time.Time{}, false, time.Time{}, err
		}
	}
	return run, ok, occ, nil
}
