package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience/imports"
	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// importBundle is an API with an importer on one driver.
type importBundle struct {
	*bundle
	im  *imports.Importer
	dir string
}

func importDrivers() []string { return []string{"sqlite", "postgres"} }

func setupImports(t *testing.T, driver string) *importBundle {
	t.Helper()
	var st store.Store
	switch driver {
	case "sqlite":
		st = sqlitetest.Open(t)
	case "postgres":
		pg, err := postgres.Open(t.Context(), postgres.Options{URL: pgtest.URL(t), Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		st = pg
	}
	sum := sha256.Sum256([]byte(testKey))
	if err := st.APIKeyCreate(context.Background(), store.APIKey{ID: "key_0", Name: "test", Hash: sum[:], CreatedAt: testNow, Scopes: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ListCreate(t.Context(), store.List{ID: "lst_news", Name: "News", CreatedAt: testNow, UpdatedAt: testNow}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "spool")
	im, err := imports.New(imports.Config{Store: st, Dir: dir, Node: "n1", Owner: "n1/1/a", MaxRows: 3,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Store: st, Now: func() time.Time { return testNow }, Version: "test", Imports: im,
		MaxRecipients: 50, MaxBatch: 500, MaxMessageSize: 25 << 20, MessageTTL: 24 * time.Hour, MaxAttempts: 4}
	srv := httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(srv.Close)
	return &importBundle{bundle: &bundle{t: t, srv: srv, store: st}, im: im, dir: dir}
}

// multipartBody is a multipart upload of parts (name, filename or "", content).
func multipartBody(parts ...[3]string) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		var pw io.Writer
		if p[1] != "" {
			pw, _ = w.CreateFormFile(p[0], p[1])
		} else {
			pw, _ = w.CreateFormField(p[0])
		}
		io.WriteString(pw, p[2])
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

// TestImportRefused: bad uploads and options get a 4xx naming the field, and nothing is stored:
// no import, no contact, no spool file.
func TestImportRefused(t *testing.T) {
	t.Parallel()
	good := "email,name\nann@example.com,Ann\n"
	mpGood := func(options string) (string, []byte) {
		return multipartBody([3]string{"options", "", options}, [3]string{"file", "people.csv", good})
	}
	tests := []struct {
		name     string
		query    string
		ctype    string
		body     []byte
		status   int
		location string
	}{
		{"no email column", "", "text/csv", []byte("mail,name\nann@example.com,Ann\n"), 422, "query.mapping"},
		{"Latin-1", "", "text/csv", []byte("email,name\nann@example.com,Jos\xe9\n"), 400, "body"},
		{"Latin-1 in multipart", "", "", nil, 400, "body.file"},
		{"bare quote", "", "text/csv", []byte("email,name\nann@example.com,A\"nn\n"), 400, "body"},
		{"over the row limit", "", "text/csv", []byte("email\na@x.com\nb@x.com\nc@x.com\nd@x.com\n"), 413, "body"},
		{"empty file", "", "text/csv", nil, 422, "body"},
		{"unknown list", "?lists=lst_news,lst_nope", "text/csv", []byte(good), 422, "query.lists[1]"},
		{"unknown mode", "?mode=merge", "text/csv", []byte(good), 422, "query.mode"},
		{"mapping not JSON", "?mapping=" + url.QueryEscape("{email"), "text/csv", []byte(good), 422, "query.mapping"},
		{"mapping to no field", "?mapping=" + url.QueryEscape(`{"name":"phone"}`), "text/csv", []byte(good), 422, "query.mapping.name"},
		{"mapping of no column", "?mapping=" + url.QueryEscape(`{"Plan":"attributes.plan"}`), "text/csv", []byte(good), 422, "query.mapping.Plan"},
		{"unknown list in options", "", "", nil, 422, "body.options.lists[0]"},
		{"unknown mode in options", "", "", nil, 422, "body.options.mode"},
		{"options not JSON", "", "", nil, 422, "body.options"},
		{"no file part", "", "", nil, 422, "body.file"},
		{"JSON body", "", "application/json", []byte(`{"email":"a@x.com"}`), 415, "header.Content-Type"},
	}
	for _, driver := range importDrivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			b := setupImports(t, driver)
			for _, tc := range tests {
				ctype, body := tc.ctype, tc.body
				switch tc.name {
				case "Latin-1 in multipart":
					ctype, body = multipartBody([3]string{"file", "p.csv", "email,name\na@x.com,Jos\xe9\n"})
				case "unknown list in options":
					ctype, body = mpGood(`{"lists":["lst_nope"]}`)
				case "unknown mode in options":
					ctype, body = mpGood(`{"mode":"merge"}`)
				case "options not JSON":
					ctype, body = mpGood(`{"mode":`)
				case "no file part":
					ctype, body = multipartBody([3]string{"options", "", `{}`})
				}
				r := b.do(http.MethodPost, "/v1/imports"+tc.query, body, "Content-Type", ctype)
				if r.status != tc.status {
					t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
					continue
				}
				var p struct {
					Errors []struct{ Location string }
				}
				if err := json.Unmarshal(r.body, &p); err != nil || len(p.Errors) == 0 || p.Errors[0].Location != tc.location {
					t.Errorf("%s: errors %s, want the location %s", tc.name, r.body, tc.location)
				}
			}
			imps, _, err := b.store.ImportList(t.Context(), store.ImportListParams{})
			if err != nil || len(imps) != 0 {
				t.Errorf("imports stored: %v, %v", imps, err)
			}
			contacts, _, err := b.store.ContactList(t.Context(), store.ContactListParams{})
			if err != nil || len(contacts) != 0 {
				t.Errorf("contacts stored: %v, %v", contacts, err)
			}
			if entries, _ := os.ReadDir(b.dir); len(entries) != 0 {
				t.Errorf("spool files left: %v", entries)
			}
		})
	}
}

// TestImportAPI: a CSV body and a multipart upload are imported; the import is shown and listed.
func TestImportAPI(t *testing.T) {
	t.Parallel()
	for _, driver := range importDrivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			b := setupImports(t, driver)
			r := b.do(http.MethodPost, "/v1/imports?lists=lst_news&mapping="+url.QueryEscape(`{"Mail":"email","junk":""}`),
				"Mail,Plan,junk\nann@example.com,pro,x\nbob@example.com,free,y\n", "Content-Type", "text/csv; charset=utf-8")
			if r.status != http.StatusAccepted {
				t.Fatalf("POST text/csv: %d %s", r.status, r.body)
			}
			first := r.json(t)
			if first["status"] != "queued" || first["total_rows"] != float64(2) || first["mode"] != "upsert" {
				t.Errorf("import = %s", r.body)
			}
			if m := first["mapping"].(map[string]any); m["Mail"] != "email" || m["Plan"] != "attributes.Plan" || m["junk"] != nil {
				t.Errorf("mapping applied = %v", m)
			}
			ctype, body := multipartBody([3]string{"file", "people.csv", "email,name\ncarl@example.com,Carl\n"},
				[3]string{"options", "", `{"mode":"create_only","lists":["lst_news"]}`})
			r = b.do(http.MethodPost, "/v1/imports?mode=upsert", body, "Content-Type", ctype)
			if r.status != http.StatusAccepted {
				t.Fatalf("POST multipart: %d %s", r.status, r.body)
			}
			second := r.json(t)
			if second["filename"] != "people.csv" || second["mode"] != "create_only" {
				t.Errorf("multipart import = %s", r.body)
			}
			for range 2 {
				if ran, err := b.im.RunOnce(t.Context()); !ran || err != nil {
					t.Fatalf("RunOnce = %v, %v", ran, err)
				}
			}
			r = b.do(http.MethodGet, "/v1/imports/"+first["id"].(string), nil)
			got := r.json(t)
			if got["status"] != "done" || got["counts"].(map[string]any)["created"] != float64(2) || got["finished_at"] == nil {
				t.Errorf("GET the import: %s", r.body)
			}
			r = b.do(http.MethodGet, "/v1/imports?limit=1", nil)
			page := r.json(t)
			if data := page["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != second["id"] || page["next_cursor"] == nil {
				t.Errorf("GET /v1/imports?limit=1: %s", r.body)
			}
			r = b.do(http.MethodGet, "/v1/imports?cursor="+page["next_cursor"].(string), nil)
			if data := r.json(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != first["id"] {
				t.Errorf("second page: %s", r.body)
			}
			for _, path := range []string{"/v1/imports/imp_01m95tnxxcej2sxfmf5x6a7q7f", "/v1/imports/nope"} {
				if r := b.do(http.MethodGet, path, nil); r.status != http.StatusNotFound {
					t.Errorf("GET %s: %d", path, r.status)
				}
			}
			if r := b.do(http.MethodGet, "/v1/imports?cursor=nope", nil); r.status != http.StatusUnprocessableEntity {
				t.Errorf("bad cursor: %d", r.status)
			}
		})
	}
}
