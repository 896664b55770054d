//! YAML text -> (JSON value, pointer -> span map).
//!
//! The value comes from `yaml_serde` (YAML 1.2 core schema, merge keys applied, duplicate keys
//! rejected); positions come from a second, event-level pass with `saphyr-parser`, recorded per
//! JSON pointer. Guarantees: a syntax error is one [`Diagnostic`] at the place the parser
//! stopped; on success every mapping key and every value that appears in the text has a span.
use crate::diagnostic::Diagnostic;
use crate::limits::{self, MAX_FILE_BYTES, YAML_MAX_DEPTH};
use crate::span::{NodeSpans, Pos, ScalarStyle, Span, SpanMap, pointer_push};
use saphyr_parser::{Event, Parser, ScalarStyle as YStyle};

/// A runbook file as data plus positions.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The document as JSON. Object keys keep the order of the text (serde_json's
    /// `preserve_order` is on for the workspace), like `yaml`; keys a merge key (`<<`) brings
    /// in come after the mapping's own keys.
    pub value: serde_json::Value,
    /// The document as YAML, merge keys applied: keeps the author's key order.
    pub yaml: serde_yaml::Value,
    /// Where each node of `value` is in the text.
    pub spans: SpanMap,
}

/// Parses one YAML document. `file` is used only to label diagnostics.
/// A syntax error is boxed: it is the rare path, and `Loaded` stays the size of the common one.
pub fn load(file: &str, text: &str) -> Result<Loaded, Box<Diagnostic>> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(Box::new(limits::file_too_large(file, text.len() as u64)));
    }
    // Before the YAML deserializer, which recurses into what this walk finds too deep.
    let walked = match span_map(text) {
        Ok(w) => w,
        Err(at) => {
            return Err(Box::new(
                Diagnostic::error(
                    file,
                    at,
                    format!(
                        "YAML nests deeper than {YAML_MAX_DEPTH} levels, the limit (mappings \
                         and sequences inside each other)"
                    ),
                )
                .with_hint(
                    "the limit is fixed (the YAML deserializer stops at 128 levels): flatten \
                     the structure",
                ),
            ));
        }
    };
    let yaml: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let mut d = yaml_error(file, &e);
            // yaml_serde reports a duplicate key at its mapping; point at the repeated key.
            if let Some((_, Some((key, span)))) = &walked
                && d.message.contains("duplicate")
            {
                d.span = *span;
                d.message = format!("duplicate key `{key}` in this mapping");
                d.hint = Some("each key may appear once; remove or rename one of them".into());
            }
            return Err(Box::new(d));
        }
    };
    let spans = walked.map(|(m, _)| m).unwrap_or_default();
    let mut yaml = yaml;
    if let Err(e) = yaml.apply_merge() {
        return Err(Box::new(yaml_error(file, &e)));
    }
    if let Some((pointer, tag)) = first_tag(&yaml, "") {
        let at = spans.resolve(&pointer).value;
        return Err(Box::new(
            Diagnostic::error(
                file,
                at,
                format!("YAML tag `{tag}` is not supported in runbooks"),
            )
            .with_hint(
                "write the value as plain YAML; templates (`{{ ... }}`) cover computed values",
            ),
        ));
    }
    let value = match serde_json::to_value(&yaml) {
        Ok(v) => v,
        Err(e) => {
            return Err(Box::new(
                Diagnostic::error(
                    file,
                    Span::point(1, 1),
                    format!("the document cannot be represented as JSON: {e}"),
                )
                .with_hint("mapping keys must be strings, and numbers must be finite"),
            ));
        }
    };
    Ok(Loaded { value, yaml, spans })
}

impl Loaded {
    /// The typed runbook, deserialized from the YAML: ordered maps (report columns) keep the
    /// author's order.
    pub fn runbook(&self) -> Result<crate::model::Runbook, String> {
        serde_yaml::from_value(self.yaml.clone()).map_err(|e| e.to_string())
    }
}

fn yaml_error(file: &str, e: &serde_yaml::Error) -> Diagnostic {
    let (line, col) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let mut message = e.to_string();
    // yaml_serde appends " at line L column C"; the location is ours to print.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    Diagnostic::error(
        file,
        Span::point(line, col),
        format!("invalid YAML: {message}"),
    )
}

fn first_tag(v: &serde_yaml::Value, pointer: &str) -> Option<(String, String)> {
    match v {
        serde_yaml::Value::Tagged(t) => Some((pointer.to_string(), t.tag.to_string())),
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| first_tag(item, &pointer_push(pointer, &i.to_string()))),
        serde_yaml::Value::Mapping(m) => m.iter().find_map(|(k, item)| {
            let key = k.as_str().map(str::to_string).unwrap_or_default();
            first_tag(item, &pointer_push(pointer, &key))
        }),
        _ => None,
    }
}

enum Frame {
    Map {
        pointer: String,
        key: Option<Span>,
        start: Span,
        pending: Option<(String, Span)>,
        seen: std::collections::HashSet<String>,
    },
    Seq {
        pointer: String,
        key: Option<Span>,
        start: Span,
        index: usize,
    },
    /// A collection used as a mapping key: positions inside it are not recorded.
    Ignored { depth: usize },
}

fn to_span(s: &saphyr_parser::Span) -> Span {
    let p = |m: &saphyr_parser::Marker| Pos {
        line: m.line(),
        col: m.col() + 1,
        offset: m.index(),
    };
    Span {
        start: p(&s.start),
        end: p(&s.end),
    }
}

/// Where the next node goes: `Some((pointer, key span))` for a value, `None` for a mapping key.
fn slot(stack: &mut [Frame]) -> Option<Option<(String, Option<Span>)>> {
    match stack.last_mut() {
        None => Some(Some((String::new(), None))),
        Some(Frame::Map {
            pointer, pending, ..
        }) => match pending.take() {
            Some((k, span)) => Some(Some((pointer_push(pointer, &k), Some(span)))),
            None => Some(None),
        },
        Some(Frame::Seq { pointer, index, .. }) => {
            let p = pointer_push(pointer, &index.to_string());
            *index += 1;
            Some(Some((p, None)))
        }
        Some(Frame::Ignored { .. }) => None,
    }
}

type Duplicate = Option<(String, Span)>;

/// The spans of every node in `text`, by JSON pointer, and the first repeated mapping key;
/// `None` when the text does not parse; the error is where a collection opens deeper than
/// [`YAML_MAX_DEPTH`].
fn span_map(text: &str) -> Result<Option<(SpanMap, Duplicate)>, Span> {
    let mut walk = Walk::default();
    for ev in Parser::new_from_str(text) {
        let (event, span) = match ev {
            Ok(ev) => ev,
            // The scanner stops at 255 open flow collections (`[[[...`) before it sends their
            // start events (a `[` may begin a key); the deserializer would take minutes.
            Err(e) if e.info().contains("recursion limit") => {
                let m = e.marker();
                let at = Pos {
                    line: m.line(),
                    col: m.col() + 1,
                    offset: m.index(),
                };
                return Err(Span { start: at, end: at });
            }
            Err(_) => return Ok(None),
        };
        let span = to_span(&span);
        if matches!(event, Event::MappingStart(..) | Event::SequenceStart(..)) {
            walk.depth += 1;
            if walk.depth > YAML_MAX_DEPTH {
                return Err(span);
            }
        } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
            walk.depth = walk.depth.saturating_sub(1);
        }
        if walk.skip_ignored(&event, span) {
            continue;
        }
        match event {
            Event::Scalar(value, style, ..) => walk.scalar(value.into_owned(), style, span),
            Event::Alias(_) => walk.alias(span),
            Event::MappingStart(..) => walk.start(true, span),
            Event::SequenceStart(..) => walk.start(false, span),
            Event::MappingEnd | Event::SequenceEnd => {
                let closed = walk.end(span);
                if !closed {
                    break;
                }
            }
            _ => {}
        }
    }
    Ok(Some((walk.map, walk.duplicate)))
}

/// The state of [`span_map`]'s walk over the parser's events.
#[derive(Default)]
struct Walk {
    map: SpanMap,
    duplicate: Duplicate,
    /// The collections open at this point, innermost last.
    stack: Vec<Frame>,
    /// How many collections are open (those used as keys included).
    depth: usize,
}

impl Walk {
    /// Inside a collection used as a mapping key, events only track its depth; when it ends,
    /// it is the pending key (`?`). Whether the event was consumed so.
    fn skip_ignored(&mut self, event: &Event<'_>, span: Span) -> bool {
        let Some(Frame::Ignored { depth }) = self.stack.last_mut() else {
            return false;
        };
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => *depth += 1,
            Event::MappingEnd | Event::SequenceEnd => {
                *depth -= 1;
                if *depth == 0 {
                    self.stack.pop();
                    self.mark_key("?".into(), span);
                }
            }
            _ => {}
        }
        true
    }

    /// A scalar is a value, recorded with its style, or a mapping key.
    fn scalar(&mut self, value: String, style: YStyle, span: Span) {
        match slot(&mut self.stack) {
            Some(Some((pointer, key))) => {
                let style = match style {
                    YStyle::Plain => ScalarStyle::Plain,
                    YStyle::SingleQuoted => ScalarStyle::SingleQuoted,
                    YStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
                    _ => ScalarStyle::Block,
                };
                self.map.insert(
                    pointer,
                    NodeSpans {
                        key,
                        value: span,
                        style,
                    },
                );
            }
            _ => self.mark_key(value, span),
        }
    }

    /// An alias value is recorded where it is written, not where its anchor is.
    fn alias(&mut self, span: Span) {
        if let Some(Some((pointer, key))) = slot(&mut self.stack) {
            self.map.insert(
                pointer,
                NodeSpans {
                    key,
                    value: span,
                    style: ScalarStyle::Collection,
                },
            );
        }
    }

    /// A mapping (`is_map`) or sequence opens; one used as a mapping key is ignored.
    fn start(&mut self, is_map: bool, span: Span) {
        let frame = match slot(&mut self.stack) {
            Some(Some((pointer, key))) if is_map => Frame::Map {
                pointer,
                key,
                start: span,
                pending: None,
                seen: Default::default(),
            },
            Some(Some((pointer, key))) => Frame::Seq {
                pointer,
                key,
                start: span,
                index: 0,
            },
            _ => Frame::Ignored { depth: 1 },
        };
        self.stack.push(frame);
    }

    /// The innermost collection closes: it spans from its start to here. False when none
    /// was open.
    fn end(&mut self, span: Span) -> bool {
        match self.stack.pop() {
            Some(Frame::Map {
                pointer,
                key,
                start,
                ..
            })
            | Some(Frame::Seq {
                pointer,
                key,
                start,
                ..
            }) => {
                let end = if span.end.offset > start.start.offset {
                    span.end
                } else {
                    span.start
                };
                self.map.insert(
                    pointer,
                    NodeSpans {
                        key,
                        value: Span {
                            start: start.start,
                            end,
                        },
                        style: ScalarStyle::Collection,
                    },
                );
                true
            }
            _ => false,
        }
    }

    /// `key` was read in the innermost mapping: it names the next value, and the first key
    /// seen twice is remembered.
    fn mark_key(&mut self, key: String, span: Span) {
        if let Some(Frame::Map { pending, seen, .. }) = self.stack.last_mut() {
            if !seen.insert(key.clone()) && self.duplicate.is_none() {
                self.duplicate = Some((key.clone(), span));
            }
            *pending = Some((key, span));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keys_and_values_by_pointer() {
        let text = "name: x\nsteps:\n  - id: a\n    call: 'ec2:DescribeVolumes'\n";
        let l = load("f.yaml", text).unwrap();
        let id = l.spans.get("/steps/0/id").unwrap();
        assert_eq!(
            (id.key.unwrap().start.line, id.key.unwrap().start.col),
            (3, 5)
        );
        assert_eq!((id.value.start.line, id.value.start.col), (3, 9));
        let call = l.spans.get("/steps/0/call").unwrap();
        assert_eq!(call.style, ScalarStyle::SingleQuoted);
        // offset 4 of the value text is the `:`; one column further right for the quote.
        let p = call.inside("ec2:DescribeVolumes", 3);
        assert_eq!((p.line, p.col), (4, 15));
        let step = l.spans.get("/steps/0").unwrap().value;
        assert_eq!(l.spans.resolve("/steps/0/nope/deeper").value, step);
        assert_eq!(step.start.line, 3);
    }

    #[test]
    fn syntax_error_has_location() {
        let e = load("f.yaml", "a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.span.start.line >= 2, "{:?}", e.span);
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = load("f.yaml", "a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate"), "{}", e.message);
        assert_eq!(e.span.start.line, 2);
    }

    #[test]
    fn tags_are_rejected_where_they_are() {
        let e = load("f.yaml", "a:\n  b: !Ref x\n").unwrap_err();
        assert!(e.message.contains("!Ref"), "{}", e.message);
        assert_eq!(e.span.start.line, 2);
    }

    #[test]
    fn size_and_depth_are_bounded_with_a_location() {
        let big = format!("a: \"{}\"\n", "x".repeat(1 << 20));
        let e = load("f.yaml", &big).unwrap_err();
        assert!(
            e.message.contains("limit of 1048576 bytes"),
            "{}",
            e.message
        );
        // Block nesting: stopped at the 101st collection, before the deserializer.
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&format!("{}k:\n", "  ".repeat(i)));
        }
        let e = load("f.yaml", &block).unwrap_err();
        assert!(
            e.message.contains("deeper than 100 levels"),
            "{}",
            e.message
        );
        assert_eq!(e.span.start.line, 101);
        // Flow nesting: where the scanner gives up on open flow collections.
        let flow = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = load("f.yaml", &flow).unwrap_err();
        assert!(
            e.message.contains("deeper than 100 levels"),
            "{}",
            e.message
        );
        assert_eq!(e.span.start.line, 1);
        // 100 levels are fine.
        let ok = format!("a: {}{}\n", "[".repeat(99), "]".repeat(99));
        assert!(load("f.yaml", &ok).is_ok());
    }

    #[test]
    fn merge_keys_apply() {
        let l = load("f.yaml", "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n").unwrap();
        assert_eq!(l.value["other"]["x"], 1);
    }
}
