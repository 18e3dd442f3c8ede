package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
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
	benchmarkAccept(b, "/v1/messages", body, nil)
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
	benchmarkAccept(b, "/v1/messages", body, func(bu *bundle) {
		bu.mustPut("layout", map[string]any{"html": `<html><body><h1>Shop</h1>{{template "content" .}}<p>Shop Ltd</p></body></html>`})
		tpl := orderShipped()
		tpl["layout"] = "layout"
		bu.mustPut("order-shipped", tpl)
	})
}

// BenchmarkAcceptEvent is BenchmarkAccept for events: each names a contact (upserted) and
// matches one trigger (an action stored with it); the actions are not worked.
func BenchmarkAcceptEvent(b *testing.B) {
	body, _ := json.Marshal(map[string]any{"name": "order.paid", "contact": map[string]any{"email": "customer@example.com"},
		"data": map[string]any{"order": map[string]any{"id": "A-1042", "total": 120.5}}})
	benchmarkAccept(b, "/v1/events", body, func(bu *bundle) {
		bu.mustPut("order-paid", map[string]any{"subject": "Order {{.data.order.id}}", "text": "Thanks"})
		r := bu.do("POST", "/v1/triggers", `{"name": "paid", "event": "order.paid", "template": "order-paid",
			"to": {"contact": true}, "condition": {"data": "order.total", "gt": 0}}`)
		if r.status != http.StatusCreated {
			b.Fatalf("trigger: %d %s", r.status, r.body)
		}
	})
}

// BenchmarkAcceptBatch measures accepts of 500-message batches of about 10 KB messages (as
// postie bench sends them) over real HTTP into a real SQLite file, from one client: the batch
// handler spreads each batch over every core itself.
func BenchmarkAcceptBatch(b *testing.B) {
	const n = 500
	line := "Your parcel left the warehouse this morning and is on its way to you.\n"
	item := map[string]any{"from": "Shop <orders@shop.example>", "to": []string{"customer@example.com"},
		"subject": "Your order has shipped", "text": strings.Repeat(line, 64),
		"html": strings.Repeat("<p>"+line+"</p>", 64), "tags": []string{"bench"}}
	body, _ := json.Marshal(map[string]any{"messages": slices.Repeat([]any{item}, n)})
	bu := setup(&testing.T{}, func(c *httpapi.Config) { c.Now = time.Now })
	client := &http.Client{}
	for b.Loop() {
		if !post(b, client, bu.srv.URL+"/v1/messages/batch", body, http.StatusOK) {
			return
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchmarkAccept(b *testing.B, path string, body []byte, prepare func(*bundle)) {
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
			if !post(b, client, bu.srv.URL+path, body, http.StatusAccepted) {
				return
			}
		}
	})
	unit := "msgs/s"
	if path == "/v1/events" {
		unit = "events/s"
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// post sends body to url with the test key, and reports whether the answer had status want
// (failing b when it did not).
func post(b *testing.B, client *http.Client, url string, body []byte, want int) bool {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Errorf("status %d: %.300s", resp.StatusCode, respBody)
		return false
	}
	return true
}
