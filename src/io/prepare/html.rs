//! HTML post bodies to plain text: tags stripped, entities decoded, whitespace
//! collapsed as a browser would, except inside `<pre>` (code blocks), which
//! keeps its line breaks and indentation. Block elements start new lines.

/// Elements that begin and end a line of their own.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "pre",
    "blockquote",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "tr",
    "br",
    "dl",
    "dt",
    "dd",
];

/// The text of an HTML fragment, lines separated by `\n`, no blank lines
/// outside code blocks, no leading or trailing whitespace.
pub fn to_text(html: &str) -> String {
    let mut out = Text::default();
    let mut pre = 0usize; // depth of <pre> elements we are inside
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push(&rest[..lt], pre > 0);
        rest = &rest[lt..];
        if let Some(body) = rest.strip_prefix("<!--") {
            rest = body.find("-->").map_or("", |end| &body[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // a '<' that opens no tag is text ("a < b" written without its entity)
            out.push(rest, pre > 0);
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if name.is_empty()
            || !tag
                .trim_start_matches('/')
                .starts_with(|c: char| c.is_ascii_alphabetic())
        {
            // not a tag after all ("<3", "a < b"): the '<' is text
            out.push("<", pre > 0);
            rest = &rest[1..];
            continue;
        }
        rest = &rest[gt + 1..];
        if name == "pre" {
            pre = if closing {
                pre.saturating_sub(1)
            } else {
                pre + 1
            };
        }
        if BLOCKS.contains(&name.as_str()) {
            out.line_break(name == "br");
            if name == "li" && !closing {
                out.push_raw("- ");
            }
        }
    }
    out.push(rest, pre > 0);
    out.finish()
}

#[derive(Default)]
struct Text {
    s: String,
    /// A space is owed before the next word (collapsed whitespace).
    space: bool,
}

impl Text {
    fn push(&mut self, raw: &str, pre: bool) {
        let decoded = html_escape::decode_html_entities(raw);
        if pre {
            self.space = false;
            self.s
                .push_str(&decoded.replace("\r\n", "\n").replace('\u{a0}', " "));
            return;
        }
        for (i, word) in decoded.split(|c: char| c.is_whitespace()).enumerate() {
            if i > 0 {
                self.space = true;
            }
            if !word.is_empty() {
                self.push_raw(word);
            }
        }
    }

    fn push_raw(&mut self, word: &str) {
        if self.space && !self.s.is_empty() && !self.s.ends_with('\n') {
            self.s.push(' ');
        }
        self.space = false;
        self.s.push_str(word);
    }

    /// Ends the current line. A `<br>` may leave an empty line (it is an
    /// explicit break); block boundaries never stack up blank lines.
    fn line_break(&mut self, explicit: bool) {
        self.space = false;
        let trimmed = self.s.trim_end_matches([' ', '\t']).len();
        self.s.truncate(trimmed);
        if !self.s.is_empty() && (explicit || !self.s.ends_with('\n')) {
            self.s.push('\n');
        }
    }

    fn finish(self) -> String {
        // blank lines stay only where a code block holds them
        let mut out = String::with_capacity(self.s.len());
        for line in self.s.trim().split('\n') {
            let line = line.trim_end();
            if !line.is_empty() || !out.ends_with("\n\n") {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn paragraphs_lists_and_inline_markup() {
        let html = "<p>Hello <b>bold</b>\n  world &amp; <a href=\"x?a=1&amp;b=2\">link</a>.</p>\n\n\
                    <ul>\n<li>one</li>\n<li>two &lt;3</li>\n</ul><p>caf&eacute; &#8212; &#x27;q&#x27;&nbsp;end</p>";
        assert_eq!(
            to_text(html),
            "Hello bold world & link.\n- one\n- two <3\ncafé — 'q' end"
        );
    }

    #[test]
    fn code_blocks_keep_line_breaks_and_indentation() {
        let html = "<p>Try:</p>\n\n<pre><code>fn main() {\n    if a &lt; b {\n\n        x();\n    }\n}\n</code></pre>\n\n<p>Done <code>inline  code</code>.</p>";
        assert_eq!(
            to_text(html),
            "Try:\nfn main() {\n    if a < b {\n\n        x();\n    }\n}\nDone inline code."
        );
    }

    #[test]
    fn stray_angle_brackets_and_comments() {
        assert_eq!(
            to_text("<p>a < b and c <3 d</p><!-- hidden -->e"),
            "a < b and c <3 d\ne"
        );
        assert_eq!(to_text("x <"), "x <");
        assert_eq!(to_text("line<br>next<br/><br>after"), "line\nnext\n\nafter");
    }
}
