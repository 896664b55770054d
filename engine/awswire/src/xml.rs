//! A small XML tree for the XML protocols, built on quick-xml.
//!
//! Guarantees: [`parse_document`] returns the root element with namespace prefixes removed
//! from element names (as botocore's ElementTree-based parser sees them), attributes with
//! their names as written, entity and character references resolved, and each element's
//! text as the concatenation of its text and CDATA content (XML 1.0 end-of-line
//! normalization applied). [`Writer`] emits well-formed XML with escaped text and attributes.
//! A document whose elements nest deeper than [`crate::MAX_DEPTH`] is refused as it is read,
//! so neither building, walking nor dropping the tree can exhaust the stack.

use quick_xml::Reader;
use quick_xml::events::Event;

/// An XML element.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Attributes: (name as written, unescaped value).
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Text content directly inside this element.
    pub text: String,
}

impl Element {
    /// First child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rfind(':') {
        Some(i) => s[i + 1..].to_string(),
        None => s.into_owned(),
    }
}

fn resolve_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => return None,
    })
}

fn element_from(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Element::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let v = a.unescape_value().map_err(|e| e.to_string())?;
        el.attrs.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            v.into_owned(),
        ));
    }
    Ok(el)
}

/// The error for a document nested deeper than [`crate::MAX_DEPTH`].
fn too_deep() -> String {
    format!(
        "invalid XML: elements nested deeper than {} levels, orgop's depth limit for a response (AWS responses nest fewer than 25)",
        crate::MAX_DEPTH
    )
}

/// Parses a whole document and returns its root element.
pub(crate) fn parse_document(bytes: &[u8]) -> Result<Element, String> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("invalid XML: {e}"))?;
        match ev {
            Event::Start(e) => {
                if stack.len() >= crate::MAX_DEPTH {
                    return Err(too_deep());
                }
                stack.push(element_from(&e)?);
            }
            Event::Empty(e) => {
                if stack.len() >= crate::MAX_DEPTH {
                    return Err(too_deep());
                }
                let el = element_from(&e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("invalid XML: unbalanced end tag")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.xml10_content().map_err(|e| e.to_string())?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                        top.text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        let v = resolve_entity(&name)
                            .ok_or_else(|| format!("invalid XML: unknown entity &{name};"))?;
                        top.text.push_str(v);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("invalid XML: unclosed element".to_string());
    }
    root.ok_or_else(|| "invalid XML: no root element".to_string())
}

/// Escapes text or an attribute value.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// A minimal XML writer into a string.
#[derive(Default)]
pub(crate) struct Writer {
    pub out: String,
}

impl Writer {
    /// Opens an element with attributes.
    pub fn open(&mut self, name: &str, attrs: &[(String, String)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&escape(v));
            self.out.push('"');
        }
        self.out.push('>');
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Writes escaped text.
    pub fn text(&mut self, s: &str) {
        self.out.push_str(&escape(s));
    }

    /// Writes `<name attrs>text</name>`.
    pub fn leaf(&mut self, name: &str, attrs: &[(String, String)], text: &str) {
        self.open(name, attrs);
        self.text(text);
        self.close(name);
    }
}
