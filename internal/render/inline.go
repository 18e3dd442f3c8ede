package render

// cssPlan is how a template's CSS is inlined when rendering; nil when Compile inlined it all.
type cssPlan struct{}

func planCSS(set *partSet) (*cssPlan, []string) { return nil, nil }

func (p *cssPlan) inline(html []byte, b *budget) (string, error) { return string(html), nil }
