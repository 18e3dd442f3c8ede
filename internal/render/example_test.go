package render_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/postie/postie/internal/render"
)

func Example() {
	layouts := func(name string) (render.Source, error) {
		if name != "brand" {
			return render.Source{}, fmt.Errorf("%q: %w", name, render.ErrNotFound)
		}
		return render.Source{
			Subject: `{{template "content" .}} · Shop`,
			HTML:    `<html><head><style>p { margin: 0 } .total { font-weight: bold }</style></head><body>{{template "content" .}}</body></html>`,
		}, nil
	}
	tpl, err := render.Compile(render.Source{
		Name:    "order-shipped",
		Subject: "Order {{.data.order.id}} is on its way",
		HTML:    `<p>Hi {{default "there" (index .contact "first_name")}},</p><p class="total">Total {{currency .data.order.total "EUR"}}</p>`,
		Layout:  "brand",
		Schema:  json.RawMessage(`{"type": "object", "required": ["order"]}`),
	}, layouts)
	if err != nil {
		fmt.Println(err)
		return
	}

	// Data is validated at the door: a missing field names its JSON path.
	fmt.Println(tpl.Validate(json.RawMessage(`{}`)))

	data, err := tpl.DecodeData(json.RawMessage(`{"order": {"id": "A-1", "total": 1234.5}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := tpl.Render(context.Background(), render.Context{Data: data}, render.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Subject)
	fmt.Println(out.HTML)
	fmt.Println(strings.ReplaceAll(out.Text, "\n\n", " / "))
	// Output:
	// data /data/order: is required
	// Order A-1 is on its way · Shop
	// <html><head></head><body><p style="margin:0">Hi there,</p><p class="total" style="margin:0;font-weight:bold">Total €1,234.50</p></body></html>
	// Hi there, / Total €1,234.50
}
