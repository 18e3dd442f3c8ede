// Package render turns a saved template and a message's data into a subject, an email-ready
// HTML body and a text body. It is pure: no database, no network, no clock other than the
// render's own time budget.
//
// # Life of a template
//
// Compile takes a Source (subject, html, text, layout name, JSON Schema) and a Layouts
// function, and returns an immutable *Template that callers cache per (name, version,
// locale). Compile does everything that can be done once:
//
//   - resolves the layout chain (a layout may have a layout; a missing layout or a cycle is an
//     error on "layout");
//   - parses every part of every level with Go's template parser and the function set below,
//     so syntax errors and unknown functions are reported at upload with their line;
//   - checks that every {{template "x"}} names a template the same source defines, that no
//     template calls itself (directly or not), and that each layout includes its content;
//   - loads the time zones named literally in date calls (an unknown zone is an error);
//   - compiles the JSON Schema (draft 2020-12 by default, "format" asserted, no external
//     references: nothing is read from the disk or the network);
//   - inlines the CSS of <style> blocks into the HTML source when the template allows it, so
//     that rendering does not parse CSS or HTML at all (see "CSS inlining");
//   - runs html/template's contextual escaper once, so its errors (an action in an ambiguous
//     URL context, branches ending in different contexts) are Compile errors too.
//
// What Compile noticed without failing (CSS it could not inline, why CSS is inlined per
// render) is in Template.Notes, for a warning in the answer to an upload.
//
// DecodeData (or Validate) checks a message's data: at most MaxDataSize (1 MB) of JSON, an
// object, valid against the schema. Every violation is an *Error on "data" whose Path is the
// JSON pointer in the request ("/data/order/id"); several come back as Errors.
//
// Render executes the parts for one message within Limits (2 MB per part, 2 s by default).
//
// # Data
//
// Every part sees the same dot:
//
//	{{.data}}     the message's data (Context.Data; decode it with DecodeData so that numbers
//	              keep their exact decimals)
//	{{.contact}}  the recipient's contact attributes, or an empty object when the recipient is
//	              not a known contact: {{if .contact}}…{{end}} is false
//	{{.message}}  {{.message.id}} and {{.message.stream}}
//	{{.campaign}} the campaign a message was made for (Context.Campaign: id, name, run_id,
//	              scheduled_at), or an empty object
//	{{.event}}    the event a trigger's message was made for (Context.Event: id, name,
//	              occurred_at), or an empty object
//	{{.events}}   a digest's events, the data of each, oldest first, or an empty list
//
// A missing key is an error, not "<no value>": {{.data.nope}} fails the render with Path
// "/data/nope". Optional keys are read with index, which yields nothing for a missing key:
// {{default "there" (index .contact "first_name")}}. A JSON null prints as nothing; numbers
// print in plain decimal notation (1000000, not 1e+06).
//
// The subject and the text are text/template (no escaping); the html is html/template, which
// escapes every value for its context (element text, attribute, URL, CSS). There is no
// function that lets data through unescaped: data is untrusted, layouts give the structure.
// The rendered subject is trimmed and must then be one line without control characters; a
// template without a subject renders an empty one (the caller decides whether that is
// allowed). A template needs html, text or both.
//
// # Functions
//
// Besides Go's builtins (and, or, not, eq, ne, lt, le, gt, ge, len, index, slice, print,
// printf, println, html, js, urlquery, call):
//
//	default DEF V         V, or DEF when V is nil, "", an empty list or an empty object
//	                      (0 and false are values): {{.data.name | default "friend"}}
//	upper S, lower S      case mapping
//	title S               upper-case the first letter of every word
//	trim S                strip surrounding white space
//	truncate N S          the first N characters of S, with "…" when cut
//	join SEP LIST         the elements of LIST joined by SEP
//	date LAYOUT T [ZONE]  T (time.Time, RFC 3339 string, "2006-01-02" date, or Unix seconds)
//	                      formatted in ZONE, or the render's Context.TimeZone, or UTC. LAYOUT
//	                      is a Go layout or one of date (2006-01-02), time (15:04), datetime,
//	                      short (Jan 2, 2006), medium (Jan 2, 2006, 3:04 PM), long (January 2,
//	                      2006), full (Monday, January 2, 2006), kitchen (3:04 PM), rfc3339,
//	                      rfc1123. ZONE is "UTC", an offset ("+05:30") or a zone name written
//	                      literally in the template ("Europe/Paris"; loaded at Compile). A zone
//	                      name that comes from data is refused: set Context.TimeZone instead.
//	                      The pipeline form {{.data.at | date "long"}} takes no zone.
//	                      Month and day names are English.
//	number N [DECIMALS]   1234567.891 → 1,234,567.891; with DECIMALS rounded half away from
//	                      zero: {{number .data.total 2}} → 1,234,567.89
//	currency N CODE       an amount in an ISO 4217 currency: {{currency .data.total "EUR"}} →
//	                      €1,234.50 (also {{.data.total | currency "EUR"}}). Common currencies
//	                      have their symbol and minor units (JPY ¥123,457, KWD 3 decimals);
//	                      others print as "SEK 1.50".
//	unsubscribe_url       the recipient's unsubscribe link (Context.Links), or
//	                      PlaceholderUnsubscribeURL when there is none yet
//	preferences_url       likewise for the preferences page (PlaceholderPreferencesURL)
//
// Numbers may be JSON numbers (json.Number or float64), Go integers or numeric strings. No
// function does I/O.
//
// # Layouts
//
// A Source names its layout in Layout. The layout is a Source too; each of its parts wraps the
// same part of the template by calling {{template "content" .}} where the content goes:
//
//	layout "base", html:    <html><body><main>{{template "content" .}}</main></body></html>
//	layout "base", subject: {{template "content" .}} · Shop
//
// A layout part that is empty leaves that part of the template unwrapped; a non-empty layout
// part that does not call "content" is an error. The text part is wrapped only when the
// template has its own text (otherwise the text is generated from the wrapped HTML). A layout
// may have its own layout, up to MaxLayoutDepth; a layout that includes itself is an error.
// Templates each source defines with {{define}} are private to that source, so a layout and
// a template may both define "footer". Compiled on its own (for a preview), a layout's
// {{template "content" .}} renders nothing. The layout's schema is not used.
//
// # CSS inlining
//
// Many email clients ignore <style> blocks, so the rules of the html's <style> blocks are
// copied into each element's style="" attribute (package cssinline): !important stylesheet
// declarations beat the element's own style="" declarations, which beat normal stylesheet
// declarations; within a tier the more specific selector wins (id > class, attribute and
// pseudo-class > type), then the later one. !important is kept in the attribute. What cannot
// be inlined stays in its <style> block, in source order: @media (responsive rules override
// inline styles with !important), @font-face, @import and other at-rules, dynamic
// pseudo-classes (:hover, :focus, :visited, :checked …), pseudo-elements (::before) and
// selectors cascadia cannot match; a block left empty is removed. <style media="print"> is
// left alone. Template.Notes lists the kept selectors.
//
// The inliner changes only style attributes and <style> blocks and keeps every other byte,
// so it works on a template's source as well as on rendered HTML. Compile inlines into the
// source whenever the result cannot depend on the data (inline_template.go lists the
// conditions: no action in class, id, style or a tested attribute, no action-built tags,
// branches that close what they open, no structural selectors such as :first-child around
// loops, static <style> blocks, no template called twice); rendering then does no CSS work
// at all. Otherwise every Render inlines its output, reusing the stylesheets parsed at
// Compile, and Notes says why. cssinline.Inline does the same for HTML that does not come
// from a template. No html, head, body or tbody element is invented, so "table > tr" matches
// here and not in a browser, and "body p" needs a <body> tag.
//
// Conditional comments for Outlook (<!--[if mso]>…<![endif]-->, <!--[if !mso]><!-->…
// <!--<![endif]-->), which html/template would remove with every other comment, are kept
// (comments.go). Other comments are removed.
//
// # Text part
//
// When the template has no text, Render generates it from the final HTML with package
// [htmltext] (internal/htmltext, which internal/mail uses too, for messages sent with HTML
// only): paragraphs and blocks separated by blank lines, headings framed or underlined, links
// as "text (url)", lists as "* " or "1. " (nested ones indented), one line per table row with
// its cells separated by " | ", block quotes prefixed with "> ". Generating the text costs
// more than executing the HTML (see docs/BENCHMARKS.md); a template with its own text part
// skips it.
//
// # Execution
//
// Go's executor calls every template function, html/template's escapers included, through
// reflection, and finds every field with it; for a typical newsletter that was more than half
// of a render. Render therefore runs each part with a direct executor of its own (exec.go): it
// walks the same parse trees (for the html, the trees html/template has escaped, so every
// escaping decision stays html/template's), looks fields up in the decoded JSON maps and calls
// the functions above, Go's and, or, not, eq, ne, len and index, and html/template's escapers
// of text, attributes and URLs directly. It is an accelerator only: a part whose trees use
// anything else (printf, lt, break, a template html/template derived for another context, a
// JavaScript or CSS escaper) runs through text/template as before, and so does a part that
// meets at run time a value or an argument the direct executor does not treat exactly as
// text/template would, or any error other than the budget's (missing keys, function
// errors): the part is then run again by text/template, which gives the output or the error
// with its position. exec_test.go checks that both executors give the same output and errors.
//
// # Budget
//
// Go templates cannot be interrupted from outside, so a render checks its budget at
// checkpoints: every write to the output (each part stops with ErrOutputLimit past
// Limits.MaxOutput, so a range over huge data stops at the size limit), every function call,
// every printed value and the top of every range iteration (Compile adds a hidden
// {{$__tick := __tick}} there), where the time (Limits.Timeout, and the caller's context) is
// looked at every 32 checkpoints. Loops stop at the deadline whether or not they print.
// Recursion is refused at Compile, so call depth is bounded by the number of templates. What
// is not bounded: the time of a single builtin call between checkpoints, which is linear in
// the data (at most 1 MB), and the memory of the data itself.
//
// # Errors
//
// Everything that is the template's or the data's fault is an *Error (or Errors) naming the
// part ("subject", "html", "text", "layout", "schema", "data"), a JSON pointer where one
// applies, and the line and column where Go reports them. The HTTP layer answers 422 with
// them. A render stopped by the caller's context carries context.Canceled in Err: that is not
// the template's fault.
package render
