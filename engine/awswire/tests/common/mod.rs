//! Comparisons shared by the integration tests: JSON by value, XML as element trees, form
//! bodies as ordered pairs, URIs with their query as a multiset.
#![allow(dead_code)]

use serde_json::Value;

pub fn split_uri(uri: &str) -> (String, Vec<String>) {
    match uri.split_once('?') {
        Some((p, q)) => {
            let mut pairs: Vec<String> = q
                .split('&')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            pairs.sort();
            (p.to_string(), pairs)
        }
        None => (uri.to_string(), Vec::new()),
    }
}

pub fn bodies_equal(want: &[u8], got: &[u8], content_type: &str) -> bool {
    if want == got {
        return true;
    }
    if want.is_empty() || got.is_empty() {
        return false;
    }
    if content_type.contains("json")
        && let (Ok(a), Ok(b)) = (
            serde_json::from_slice::<Value>(want),
            serde_json::from_slice::<Value>(got),
        )
    {
        return same(&a, &b);
    }
    if content_type.contains("xml")
        && let (Some(a), Some(b)) = (xml_tree(want), xml_tree(got))
    {
        return a == b;
    }
    if content_type.contains("x-www-form-urlencoded") {
        let pairs = |b: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(b)
                .trim()
                .split('&')
                .map(str::to_string)
                .collect()
        };
        return pairs(want) == pairs(got);
    }
    false
}

/// A canonical XML tree: (name, sorted attributes, text if leaf, children).
#[derive(Debug, PartialEq)]
pub struct XNode {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<XNode>,
}

pub fn xml_tree(bytes: &[u8]) -> Option<XNode> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(bytes);
    let mut stack: Vec<XNode> = Vec::new();
    let mut root = None;
    let start = |e: &quick_xml::events::BytesStart<'_>| -> Option<XNode> {
        let mut attrs: Vec<(String, String)> = e
            .attributes()
            .map(|a| {
                a.ok().map(|a| {
                    (
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        a.unescape_value()
                            .map(|v| v.into_owned())
                            .unwrap_or_default(),
                    )
                })
            })
            .collect::<Option<_>>()?;
        attrs.sort();
        Some(XNode {
            name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            attrs,
            text: String::new(),
            children: Vec::new(),
        })
    };
    loop {
        match r.read_event().ok()? {
            Event::Start(e) => stack.push(start(&e)?),
            Event::Empty(e) => {
                let n = start(&e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::End(_) => {
                let mut n = stack.pop()?;
                if !n.children.is_empty() && n.text.trim().is_empty() {
                    n.text.clear();
                }
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content().ok()?);
                }
            }
            Event::GeneralRef(g) => {
                if let Some(top) = stack.last_mut() {
                    match g.resolve_char_ref().ok()? {
                        Some(c) => top.text.push(c),
                        None => top.text.push_str(match g.decode().ok()?.as_ref() {
                            "amp" => "&",
                            "lt" => "<",
                            "gt" => ">",
                            "quot" => "\"",
                            "apos" => "'",
                            _ => return None,
                        }),
                    }
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root
}

/// JSON equality with numbers compared by value.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
