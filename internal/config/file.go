package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
)

// FileEnv and FileFlag name the configuration file: a TOML file whose keys are the environment
// variables' names without POSTIE_, lower-cased (retry_delays = "1m,10m,1h").
const (
	FileEnv  = "POSTIE_CONFIG"
	FileFlag = "config"
)

// Origin says which layer a setting's value came from. Later layers win.
type Origin int

const (
	FromDefault Origin = iota
	FromFile
	FromEnv
	FromFlag
)

// Sources records where each setting's value came from, so errors and `postie config check`
// name the file key, variable or flag the operator wrote.
type Sources struct {
	File   string            // the configuration file as named, "" when none
	origin map[string]Origin // by environment variable
}

// Origin is where the setting of the variable env came from.
func (s Sources) Origin(env string) Origin { return s.origin[env] }

// Name names the setting of the variable env as the operator wrote it: "postie.toml: retry_delays",
// "POSTIE_RETRY_DELAYS" or "--retry-delays"; a default is named by its variable.
func (s Sources) Name(env string) string {
	switch s.origin[env] {
	case FromFile:
		return s.File + ": " + Key(env)
	case FromFlag:
		if f := flagOf(env); f != "" {
			return "--" + f
		}
	}
	return env
}

// Label is the source column of `postie config check`: default, the file, the variable or the flag.
func (s Sources) Label(env string) string {
	switch s.origin[env] {
	case FromFile:
		return s.File
	case FromEnv:
		return env
	case FromFlag:
		return "--" + flagOf(env)
	}
	return "default"
}

// Rename rewrites every error of err (a tree of errors.Join) that begins with a setting's
// variable ("POSTIE_LEASE: must be at least 1s") to name the setting where it was set instead
// ("postie.toml: lease: must be at least 1s"), so validation errors say which line to fix.
func (s Sources) Rename(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, s.Rename(e))
		}
		return errors.Join(out...)
	}
	env, rest, ok := strings.Cut(err.Error(), ": ")
	if !ok || flagOf(env) == "" {
		return err
	}
	if name := s.Name(env); name != env {
		return errors.New(name + ": " + rest)
	}
	return err
}

// Key is the configuration file key of the variable env: POSTIE_RETRY_DELAYS → retry_delays.
func Key(env string) string { return strings.ToLower(strings.TrimPrefix(env, "POSTIE_")) }

// flagOf is the flag of the setting env, "" when env names no setting.
func flagOf(env string) string {
	var c Config
	for _, s := range settings(&c) {
		if s.env == env {
			return s.flag
		}
	}
	return ""
}

// Resolve builds a Config from the defaults, then the configuration file (--config on fs, else
// POSTIE_CONFIG), then the environment (getenv), then the flags that were set on fs (fs may be
// nil), and says where each value came from. Only the winning value of a setting is parsed, so a
// bad value something later overrides is not an error. Every problem is returned at once, joined,
// each naming its source.
func Resolve(getenv func(string) string, fs *pflag.FlagSet) (Config, Sources, error) {
	c := Default()
	src := Sources{origin: map[string]Origin{}}
	var errs []error

	path, pathFrom := getenv(FileEnv), FileEnv
	if fs != nil {
		if f := fs.Lookup(FileFlag); f != nil && f.Changed {
			path, pathFrom = f.Value.String(), "--"+FileFlag
		}
	}
	var file map[string]any
	if path != "" {
		src.File = path
		var err error
		if file, err = readFile(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", pathFrom, err))
		}
	}
	known := map[string]bool{}
	for _, s := range settings(&c) {
		key := Key(s.env)
		known[key] = true
		var (
			v    string
			name string
			err  error
		)
		if fv, ok := file[key]; ok {
			src.origin[s.env], name = FromFile, path+": "+key
			v, err = fileValue(s, fv)
		}
		if ev := getenv(s.env); ev != "" {
			src.origin[s.env], name, v, err = FromEnv, s.env, ev, nil
		}
		if fs != nil {
			if f := fs.Lookup(s.flag); f != nil && f.Changed {
				src.origin[s.env], name, v, err = FromFlag, "--"+s.flag, f.Value.String(), nil
			}
		}
		switch o := src.origin[s.env]; {
		case err != nil:
		case v != "":
			err = s.set(v)
		case s.v.Kind() == reflect.String && (o == FromFile || o == FromFlag):
			// An empty string in the file or a flag clears the setting (an empty variable
			// means unset, as it always has).
			s.v.SetString("")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	var unknown []string
	for key := range file {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	slices.Sort(unknown)
	for _, key := range unknown {
		msg := "unknown setting"
		if near := nearest(key, known); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		errs = append(errs, fmt.Errorf("%s: %s: %s", path, key, msg))
	}
	// Validate too, so every problem is reported at once (fields that failed to parse keep
	// their defaults and pass).
	return c, src, errors.Join(append(errs, src.Rename(c.Validate()))...)
}

// readFile parses the TOML file at path into its keys (nested tables as dotted keys, which are
// never settings).
func readFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(b), toml.Parser()); err != nil {
		var de *gotoml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			return nil, fmt.Errorf("%s:%d:%d: not TOML: %v", path, line, col, de)
		}
		return nil, fmt.Errorf("%s: not TOML: %w", path, err)
	}
	return k.All(), nil
}

// fileValue turns a TOML value into the text the setting's parser takes: strings as written,
// numbers and booleans natively for settings of those types, and arrays of strings for lists
// (joined by commas).
func fileValue(s setting, v any) (string, error) {
	kind := s.v.Kind()
	if s.v.Type() == durationsType || kind == reflect.String {
		if list, ok := v.([]any); ok {
			parts := make([]string, len(list))
			for i, x := range list {
				str, ok := x.(string)
				if !ok {
					return "", fmt.Errorf("want strings in the array, got %s", tomlType(x))
				}
				if strings.Contains(str, ",") {
					return "", fmt.Errorf("item %d of the array has a comma: %q", i+1, str)
				}
				parts[i] = str
			}
			return strings.Join(parts, ","), nil
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if kind == reflect.Bool {
			return strconv.FormatBool(x), nil
		}
	case int64:
		if kind == reflect.Int || kind == reflect.Int64 && s.v.Type() != reflect.TypeFor[time.Duration]() || kind == reflect.Float64 {
			return strconv.FormatInt(x, 10), nil
		}
	case float64:
		if kind == reflect.Float64 {
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		}
	}
	return "", fmt.Errorf("want %s, got %s", wantType(s), tomlType(v))
}

// wantType describes what the file may hold for s.
func wantType(s setting) string {
	switch {
	case s.v.Type() == reflect.TypeFor[time.Duration]():
		return `a duration in quotes (like "30s", "10m", "24h", "30d")`
	case s.v.Type() == durationsType:
		return `durations, as "1m,10m,1h" or ["1m", "10m", "1h"]`
	case s.v.Kind() == reflect.Bool:
		return "true or false"
	case s.v.Kind() == reflect.Int, s.v.Kind() == reflect.Int64:
		return "an integer"
	case s.v.Kind() == reflect.Float64:
		return "a number"
	}
	return "a string"
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// nearest is the known key closest to key (at most 2 edits apart), "" when none is.
func nearest(key string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(key, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// days matches a number of days in a duration: 30d, 1.5d.
var days = regexp.MustCompile(`([0-9]*\.?[0-9]+)d`)

// ParseDuration is time.ParseDuration that also takes days: 30d, 1d12h.
func ParseDuration(v string) (time.Duration, error) {
	var bad error
	s := days.ReplaceAllStringFunc(v, func(m string) string {
		n, err := strconv.ParseFloat(strings.TrimSuffix(m, "d"), 64)
		if err != nil {
			bad = err
		}
		return strconv.FormatFloat(n*24, 'f', -1, 64) + "h"
	})
	if bad != nil {
		return 0, bad
	}
	return time.ParseDuration(s)
}

// FormatDuration writes d as the settings are written: whole days as 30d, else 1h30m, 90s, 250ms.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Effective is one setting as `postie config check` prints it: its file key, its value as it
// would be written (secrets masked) and where it came from.
type Effective struct {
	Key, Env, Value, Source string
}

// Effective lists every setting of c with its source, secrets masked.
func (c *Config) Effective(src Sources) []Effective {
	var out []Effective
	for _, s := range settings(c) {
		out = append(out, Effective{Key: Key(s.env), Env: s.env, Value: mask(s.env, s.String()), Source: src.Label(s.env)})
	}
	return out
}

// masked stands for a secret in output.
const masked = "****"

// mask hides the secrets in the value v of the setting env: API keys whole, the link keys'
// secrets (their ids stay), the key of a Sentry DSN, passwords in the database and relay URLs,
// and a relay URL's user when it has no password (a token).
func mask(env, v string) string {
	if v == "" {
		return v
	}
	switch env {
	case "POSTIE_API_KEY":
		return masked
	case "POSTIE_SECRET_KEY":
		parts := strings.Split(v, ",")
		for i, p := range parts {
			id, _, _ := strings.Cut(strings.TrimSpace(p), ":")
			parts[i] = id + ":" + masked
		}
		return strings.Join(parts, ",")
	case "POSTIE_SENTRY_DSN", "POSTIE_DATABASE_URL", "POSTIE_SMTP_URL":
		if !strings.Contains(v, "://") {
			return v // sqlite:PATH
		}
		u, err := url.Parse(v)
		if err != nil {
			return masked
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), masked)
			} else if env != "POSTIE_DATABASE_URL" {
				// A user without a password is the secret itself: a DSN's key, a relay's
				// token (smtp://TOKEN@relay). A database user is a name.
				u.User = url.User(masked)
			}
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", masked)
			u.RawQuery = q.Encode()
		}
		return strings.NewReplacer("%2A", "*").Replace(u.String())
	}
	return v
}

// FileSecrets lists the file keys of the secrets c took from the configuration file (an API key,
// link keys, a password in a URL, a Sentry DSN's key): such a file must be readable by postie's
// user only.
func (c *Config) FileSecrets(src Sources) []string {
	var out []string
	for _, s := range settings(c) {
		if src.Origin(s.env) == FromFile {
			if v := s.String(); mask(s.env, v) != v {
				out = append(out, Key(s.env))
			}
		}
	}
	return out
}
