package htmltext_test

import (
	"fmt"

	"github.com/postie/postie/internal/htmltext"
)

func ExampleConvert() {
	fmt.Println(htmltext.Convert(`<h2>Your order</h2>
<p>It ships <b>today</b>: <a href="https://shop.example/o/42">track it</a>.</p>
<table><tr><td>Boots</td><td>1</td><td>€89.00</td></tr></table>`))
	// Output:
	// ----------
	// Your order
	// ----------
	//
	// It ships *today*: track it (https://shop.example/o/42).
	//
	// Boots | 1 | €89.00
}
