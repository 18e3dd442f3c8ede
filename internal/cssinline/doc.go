// Package cssinline copies the rules of an HTML document's <style> blocks into the style
// attributes of the elements they match, for email clients that ignore <style>.
//
// The inliner works on HTML text and changes only two things in it: the style attribute of
// start tags (added, or rewritten in place), and the content of <style> blocks (reduced to
// what could not be inlined, or the block removed when nothing is left). Everything else
// stays byte for byte as written, which is what allows inlining a template's source as well
// as rendered HTML.
//
// The document is read with x/net/html's tokenizer (comments, raw text, entities as the HTML
// standard says) into a tree of html.Node built by a simple stack, not the full HTML tree
// construction algorithm: start tags nest, end tags close up to their match, void elements
// never open, and the common implied end tags (p before a block, li, dt/dd, tr, td/th,
// option) close what they close in browsers. No html/head/body/tbody elements are invented,
// so "table > tr" matches here and not in a browser, and "body p" needs a <body> tag.
// cascadia matches selectors against that tree.
//
// The cascade, per element and property: !important stylesheet declarations beat the
// element's own style="" declarations, which beat normal stylesheet declarations; within a
// tier, higher specificity (id > class/attribute/pseudo-class > type) wins, then later source
// order. The merged declarations are written in that order (so a shorthand that wins stays
// after the longhands it overrides) and !important is kept.
package cssinline
