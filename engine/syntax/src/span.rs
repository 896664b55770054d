//! Source positions and the map from JSON pointers (RFC 6901) to them.
//!
//! Guarantees: positions are 1-based lines and columns counted in characters; a pointer that is
//! not in the map resolves to its nearest recorded ancestor, so a location is always available.
use std::collections::HashMap;

/// A position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// 0-based offset in characters from the start of the file.
    pub offset: usize,
}

/// A range of source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First character.
    pub start: Pos,
    /// One past the last character.
    pub end: Pos,
}

impl Span {
    /// A span covering one position (used where only a point is known).
    pub fn point(line: usize, col: usize) -> Span {
        let pos = Pos {
            line,
            col,
            offset: 0,
        };
        Span {
            start: pos,
            end: pos,
        }
    }
}

/// How a scalar was written: decides whether offsets inside it map one-to-one to columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// `foo` (plain)
    Plain,
    /// `'foo'`
    SingleQuoted,
    /// `"foo"`
    DoubleQuoted,
    /// `|` or `>` blocks
    Block,
    /// Not a scalar: a mapping, sequence or alias.
    Collection,
}

/// Where one node of the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpans {
    /// The key, when the node is a mapping value.
    pub key: Option<Span>,
    /// The value itself.
    pub value: Span,
    /// How the value was written.
    pub style: ScalarStyle,
}

impl NodeSpans {
    /// Where a problem with this node's key belongs (the key when there is one).
    pub fn key_or_value(&self) -> Span {
        self.key.unwrap_or(self.value)
    }

    /// The position of character `offset` of the value's text, when the scalar is on one line
    /// and written so that its characters map one-to-one onto the source (plain, or quoted
    /// without escapes in the part before `offset`); otherwise the start of the value.
    pub fn inside(&self, text: &str, offset: usize) -> Pos {
        let quote = match self.style {
            ScalarStyle::Plain => 0,
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => 1,
            ScalarStyle::Block | ScalarStyle::Collection => return self.value.start,
        };
        let before: String = text.chars().take(offset).collect();
        let escaped = match self.style {
            ScalarStyle::SingleQuoted => before.contains('\''),
            ScalarStyle::DoubleQuoted => before.contains('\\') || before.contains('"'),
            _ => false,
        };
        if escaped || before.contains('\n') || self.value.start.line != self.value.end.line {
            return self.value.start;
        }
        let n = before.chars().count();
        Pos {
            line: self.value.start.line,
            col: self.value.start.col + quote + n,
            offset: self.value.start.offset + quote + n,
        }
    }
}

/// JSON pointer -> where that node is in the source.
#[derive(Debug, Clone, Default)]
pub struct SpanMap {
    nodes: HashMap<String, NodeSpans>,
}

impl SpanMap {
    pub(crate) fn insert(&mut self, pointer: String, spans: NodeSpans) {
        self.nodes.insert(pointer, spans);
    }

    /// The node at exactly this pointer.
    pub fn get(&self, pointer: &str) -> Option<&NodeSpans> {
        self.nodes.get(pointer)
    }

    /// The node at this pointer, or its nearest recorded ancestor; the document start when
    /// nothing is recorded.
    pub fn resolve(&self, pointer: &str) -> NodeSpans {
        let mut p = pointer;
        loop {
            if let Some(n) = self.nodes.get(p) {
                return *n;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => {
                    return NodeSpans {
                        key: None,
                        value: Span::point(1, 1),
                        style: ScalarStyle::Collection,
                    };
                }
            }
        }
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` as RFC 6901 says.
pub fn pointer_push(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}
