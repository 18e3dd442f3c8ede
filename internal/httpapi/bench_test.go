package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
)

// BenchmarkAccept measures single-message accepts over real HTTP into a real SQLite file, with
// 32 concurrent clients (profile it with -cpuprofile; postie bench measures the whole binary).
func BenchmarkAccept(b *testing.B) {
	body, _ := json.Marshal(map[string]any{
		"from": "Shop <orders@shop.example>", "to": []string{"customer@example.com"},
		"subject": "Your order has shipped",
		"html":    "<p>Hello,</p><p>your order <b>A-1042</b> is on its way.</p>",
		"tags":    []string{"orders"},
	})
	benchmarkAccept(b, body, nil)
}

// BenchmarkAcceptTemplate is BenchmarkAccept with each message rendered from a stored template
// with a layout and a schema: the latest version and the compiled template come from the
// catalog's caches, so the difference is the validation and the render.
func BenchmarkAcceptTemplate(b *testing.B) {
	body, _ := json.Marshal(map[string]any{
		"from": "Shop <orders@shop.example>", "to": []string{"customer@example.com"},
		"template": "order-shipped", "tags": []string{"orders"},
		"data": map[string]any{"name": "Ada", "order": map[string]any{"id": "A-1042"}},
	})
	benchmarkAccept(b, body, func(bu *bundle) {
		bu.mustPut("layout", map[string]any{"html": `<html><body><h1>Shop</h1>{{template "content" .}}<p>Shop Ltd</p></body></html>`})
		tpl := orderShipped()
		tpl["layout"] = "layout"
		bu.mustPut("order-shipped", tpl)
	})
}

func benchmarkAccept(b *testing.B, body []byte, prepare func(*bundle)) {
	t := &testing.T{}
	bu := setup(t, func(c *httpapi.Config) { c.Now = time.Now })
	if prepare != nil {
		prepare(bu)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(16) // × GOMAXPROCS(2) = 32 clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", bu.srv.URL+"/v1/messages", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 202 {
				b.Errorf("status %d: %s", resp.StatusCode, respBody)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
