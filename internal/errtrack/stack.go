package errtrack

import (
	"strconv"
	"strings"

	"github.com/getsentry/sentry-go"
)

// stackFrames turns the text of runtime/debug.Stack, taken while recovering a panic, into
// Sentry's frames, oldest call first. The frames of the recovery itself (debug.Stack, the
// deferred function, runtime.panic) are dropped, so the last frame is where the panic happened.
func stackFrames(stack []byte) []sentry.Frame {
	lines := strings.Split(strings.TrimSpace(string(stack)), "\n")
	var frames []sentry.Frame // innermost first, as debug.Stack writes them
	for i := 1; i+1 < len(lines); i += 2 {
		fn, loc := lines[i], strings.TrimSpace(lines[i+1])
		if !strings.HasPrefix(lines[i+1], "\t") {
			i-- // a line without a location (elided frames): resynchronise
			continue
		}
		fn = strings.TrimPrefix(fn, "created by ")
		if j := strings.Index(fn, " in goroutine "); j >= 0 {
			fn = fn[:j]
		} else if j := strings.LastIndexByte(fn, '('); j > 0 && strings.HasSuffix(fn, ")") {
			fn = fn[:j] // the arguments
		}
		if k := strings.LastIndex(loc, " +0x"); k >= 0 {
			loc = loc[:k]
		}
		file, line := loc, 0
		if k := strings.LastIndexByte(loc, ':'); k >= 0 {
			file = loc[:k]
			line, _ = strconv.Atoi(loc[k+1:])
		}
		module, function := splitFunc(fn)
		frames = append(frames, sentry.Frame{Function: function, Module: module, AbsPath: file,
			Filename: file[strings.LastIndexByte(file, '/')+1:], Lineno: line,
			InApp: strings.HasPrefix(module, "github.com/postie/postie/")})
	}
	for i, f := range frames {
		if (f.Module == "" && f.Function == "panic") || (f.Module == "runtime" && f.Function == "gopanic") {
			frames = frames[i+1:]
			break
		}
	}
	for i, j := 0, len(frames)-1; i < j; i, j = i+1, j-1 {
		frames[i], frames[j] = frames[j], frames[i]
	}
	return frames
}

// splitFunc splits "github.com/a/b.(*T).m" into the package and the function.
func splitFunc(fn string) (module, function string) {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return "", fn
	}
	return fn[:slash+1+dot], fn[slash+2+dot:]
}
