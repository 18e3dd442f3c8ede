package mail

import "testing"

func TestMessageIDOf(t *testing.T) {
	t.Parallel()
	const digits = "01jd8x0000000000000000000a"
	for _, tc := range []struct {
		header string
		want   string
	}{
		{"<" + digits + ".abcd2345@shop.example>", "msg_" + digits},
		{digits + ".abcd2345@shop.example", "msg_" + digits},
		{" <01JD8X0000000000000000000A.ABCD2345@SHOP.EXAMPLE> ", "msg_" + digits},
		{"<" + digits + "@shop.example>", ""},                   // no random part
		{"<" + digits + ".abcd234@shop.example>", ""},           // 7 random digits
		{"<" + digits + ".abcd2345>", ""},                       // no domain
		{"<" + digits + ".abcd2345@>", ""},                      // empty domain
		{"<01jd8x000000000000000000ui.abcd2345@x.example>", ""}, // u, i are not Crockford digits
		{"<abcdefghijklmnopqrstuvwxyz234567@x.example>", ""},    // an old random Message-ID
		{"", ""},
	} {
		got, ok := MessageIDOf(tc.header)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("MessageIDOf(%q) = %q, %v; want %q", tc.header, got, ok, tc.want)
		}
	}
}
