package render

import (
	"context"
	"testing"
)

// The newsletter of testdata/src/newsletter.tmpl in the layout of base.tmpl: ≈ 8 KB of HTML
// once rendered and inlined (4 KB of template source, 1.5 KB of it CSS), 20 data variables
// plus the two links, a range over three articles, text generated from the HTML.
//
//	go test -run x -bench RenderNewsletter -benchmem ./internal/render/
//
// Each op renders one message: subject, HTML and text. The sequential benchmarks use one
// goroutine, so ns/op is the cost on one core; RunParallel variants show how it scales.

func benchNewsletter(b *testing.B, perRender, ownText bool) (*Template, Context) {
	b.Helper()
	src := loadSource(b, "newsletter")
	if ownText {
		src.Text = "Hi {{default \"there\" (index .contact \"first_name\")}},\n\n{{.data.intro}}\n\n" +
			"{{range .data.articles}}{{.title}}\n{{.summary}}\n{{.url}}\n\n{{end}}{{.data.cta.text}}: {{.data.cta.url}}\n"
	}
	tpl, err := compile(src.Source, testLayouts(b), perRender)
	if err != nil {
		b.Fatal(err)
	}
	data, err := tpl.DecodeData(src.Data)
	if err != nil {
		b.Fatal(err)
	}
	return tpl, Context{
		Data:    data,
		Contact: map[string]any{"first_name": "Bo"},
		Message: MessageInfo{ID: "msg_01HZX4", Stream: "broadcast"},
		Links:   Links{UnsubscribeURL: "https://news.example/u/2f9c", PreferencesURL: "https://news.example/p/2f9c"},
	}
}

func runRender(b *testing.B, tpl *Template, c Context) {
	ctx := context.Background()
	out, err := tpl.Render(ctx, c, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out.HTML)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tpl.Render(ctx, c, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renders/s")
}

// BenchmarkRenderNewsletter is the figure in docs/BENCHMARKS.md: CSS inlined at Compile,
// text generated from the HTML, one core.
func BenchmarkRenderNewsletter(b *testing.B) {
	tpl, c := benchNewsletter(b, false, false)
	runRender(b, tpl, c)
}

// BenchmarkRenderNewsletterOwnText: the template has its own text part.
func BenchmarkRenderNewsletterOwnText(b *testing.B) {
	tpl, c := benchNewsletter(b, false, true)
	runRender(b, tpl, c)
}

// BenchmarkRenderNewsletterInlinePerRender: CSS inlined into every rendered message instead,
// what templates whose structure depends on data pay.
func BenchmarkRenderNewsletterInlinePerRender(b *testing.B) {
	tpl, c := benchNewsletter(b, true, false)
	runRender(b, tpl, c)
}

// BenchmarkRenderNewsletterParallel renders on every core (GOMAXPROCS goroutines).
func BenchmarkRenderNewsletterParallel(b *testing.B) {
	tpl, c := benchNewsletter(b, false, false)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tpl.Render(context.Background(), c, Limits{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renders/s")
}

// BenchmarkCompileNewsletter is what a cache miss costs.
func BenchmarkCompileNewsletter(b *testing.B) {
	src := loadSource(b, "newsletter")
	layouts := testLayouts(b)
	base, _ := layouts("base")
	cached := func(string) (Source, error) { return base, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(src.Source, cached); err != nil {
			b.Fatal(err)
		}
	}
}
