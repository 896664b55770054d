//! Parameter validation against an operation's input shape, before anything is sent.
//!
//! Guarantees: [`validate`] walks the whole parameter value and reports *every* problem, each
//! as a [`ParamError`] naming the path of the offending value the way the API reference
//! would (`Filters[0].Values`, `Tags.Name` for a map entry): unknown members (with the close
//! matches), missing required members, values of the wrong JSON type, strings outside their
//! enum, unions without exactly one member, and lengths or numbers outside `min`/`max`
//! (botocore checks no maximums, nor the sizes of maps and blobs; we do). `null` counts as
//! absent. An absent
//! idempotency token is not an error (serialization fills it). Values it accepts serialize
//! without a [`crate::SerializeError::WrongType`].

use serde_json::{Map, Value};

use crate::model::{
    Operation, ServiceModel, Shape, ShapeKind, ShapeRef, StructureShape, close_matches,
};
use crate::serialize::{input_timestamp, json_type};

/// One problem with the parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{kind}", if .path.is_empty() { String::new() } else { format!("{}: ", .path) })]
pub struct ParamError {
    /// Path of the value (`Filters[0].Values`); empty for the parameters as a whole.
    pub path: String,
    /// What is wrong.
    pub kind: ParamErrorKind,
}

/// What is wrong with a parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamErrorKind {
    /// A member the shape does not have (given as the last element of the path).
    #[error("unknown parameter{}", if .suggestions.is_empty() { String::new() } else { format!(" (did you mean {}?)", .suggestions.join(", ")) })]
    UnknownMember {
        /// Member names close to the one given, best first.
        suggestions: Vec<String>,
    },
    /// A required member is absent (its path is the path of the missing member).
    #[error("missing required parameter")]
    MissingRequired,
    /// The value has the wrong JSON type.
    #[error("expected {expected}, got {got}")]
    WrongType {
        /// What the shape needs.
        expected: &'static str,
        /// The JSON type given.
        got: &'static str,
    },
    /// A string that is not one of the shape's enum values.
    #[error("`{value}` is not one of {}", .allowed.join(", "))]
    NotInEnum {
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: Vec<String>,
    },
    /// A union with no member or several members set.
    #[error("exactly one of {} must be set, {set} are", .members.join(", "))]
    UnionMembers {
        /// How many members are set.
        set: usize,
        /// The union's members.
        members: Vec<String>,
    },
    /// A length or number below the shape's minimum.
    #[error("{what} is {actual}, below the minimum of {min}")]
    BelowMin {
        /// What is measured: `length` (characters of a string), `size in bytes` (a blob),
        /// `number of items` (a list), `number of entries` (a map) or `value` (a number).
        what: &'static str,
        /// The minimum.
        min: f64,
        /// The length or value given.
        actual: f64,
    },
    /// A length or number above the shape's maximum.
    #[error("{what} is {actual}, above the maximum of {max}")]
    AboveMax {
        /// What is measured: `length` (characters of a string), `size in bytes` (a blob),
        /// `number of items` (a list), `number of entries` (a map) or `value` (a number).
        what: &'static str,
        /// The maximum.
        max: f64,
        /// The length or value given.
        actual: f64,
    },
}

/// Validates `params` against `op`'s input shape; `Ok` or every problem found.
pub fn validate(
    model: &ServiceModel,
    op: &Operation,
    params: &Value,
) -> Result<(), Vec<ParamError>> {
    let mut errors = Vec::new();
    let v = Validator { model };
    match &op.input {
        Some(r) => v.value(r, params, "", true, &mut errors),
        None => {
            if let Value::Object(obj) = params {
                for k in obj.keys() {
                    errors.push(ParamError {
                        path: k.clone(),
                        kind: ParamErrorKind::UnknownMember {
                            suggestions: vec![],
                        },
                    });
                }
            } else if !params.is_null() {
                errors.push(ParamError {
                    path: String::new(),
                    kind: ParamErrorKind::WrongType {
                        expected: "object",
                        got: json_type(params),
                    },
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

struct Validator<'a> {
    model: &'a ServiceModel,
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    }
}

impl Validator<'_> {
    fn range(
        &self,
        shape: &Shape,
        what: &'static str,
        actual: f64,
        path: &str,
        errors: &mut Vec<ParamError>,
    ) {
        if let Some(min) = shape.min
            && actual < min
        {
            errors.push(ParamError {
                path: path.to_string(),
                kind: ParamErrorKind::BelowMin { what, min, actual },
            });
        }
        if let Some(max) = shape.max
            && actual > max
        {
            errors.push(ParamError {
                path: path.to_string(),
                kind: ParamErrorKind::AboveMax { what, max, actual },
            });
        }
    }

    fn value(&self, r: &ShapeRef, v: &Value, path: &str, top: bool, errors: &mut Vec<ParamError>) {
        let shape = self.model.target(r);
        let wrong = |expected: &'static str, errors: &mut Vec<ParamError>| {
            errors.push(ParamError {
                path: path.to_string(),
                kind: ParamErrorKind::WrongType {
                    expected,
                    got: json_type(v),
                },
            })
        };
        match &shape.kind {
            ShapeKind::Structure(s) if s.document => {}
            ShapeKind::Structure(s) => match v {
                Value::Object(obj) => self.structure(s, obj, path, errors),
                Value::Null if top => self.structure(s, &Map::new(), path, errors),
                _ => wrong("object", errors),
            },
            ShapeKind::List { member } => {
                let Value::Array(items) = v else {
                    return wrong("list", errors);
                };
                self.range(shape, "number of items", items.len() as f64, path, errors);
                for (i, x) in items.iter().enumerate() {
                    self.value(member, x, &format!("{path}[{i}]"), false, errors);
                }
            }
            ShapeKind::Map { key, value } => {
                let Value::Object(entries) = v else {
                    return wrong("object (map)", errors);
                };
                self.map(shape, (key, value), entries, path, errors);
            }
            ShapeKind::String { .. } | ShapeKind::Character => {
                if r.traits.jsonvalue == Some(true) {
                    return;
                }
                let Value::String(s) = v else {
                    return wrong("string", errors);
                };
                self.string(shape, s, path, errors);
            }
            ShapeKind::Blob => {
                let Value::String(s) = v else {
                    return wrong("string (blob)", errors);
                };
                self.range(shape, "size in bytes", s.len() as f64, path, errors);
            }
            ShapeKind::Boolean => {
                if !v.is_boolean() {
                    wrong("boolean", errors)
                }
            }
            ShapeKind::Timestamp => {
                if input_timestamp(v).is_none() {
                    wrong("timestamp (RFC 3339 string or epoch seconds)", errors)
                }
            }
            ShapeKind::Integer(_) => match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => {
                    self.range(shape, "value", n.as_f64().unwrap_or(0.0), path, errors)
                }
                _ => wrong("integer", errors),
            },
            ShapeKind::Float(_) => match v {
                Value::Number(n) => {
                    self.range(shape, "value", n.as_f64().unwrap_or(0.0), path, errors)
                }
                Value::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {}
                _ => wrong("number", errors),
            },
        }
    }

    /// A structure's members: unknown ones, missing required ones, and for a union how many
    /// are set.
    fn structure(
        &self,
        shape: &StructureShape,
        obj: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<ParamError>,
    ) {
        for (k, x) in obj {
            match shape.members.get(k) {
                Some(m) => {
                    if !x.is_null() {
                        self.value(m, x, &join(path, k), false, errors);
                    }
                }
                None => errors.push(ParamError {
                    path: join(path, k),
                    kind: ParamErrorKind::UnknownMember {
                        suggestions: close_matches(k, shape.members.keys().map(String::as_str)),
                    },
                }),
            }
        }
        for req in &shape.required {
            let present = obj.get(req).is_some_and(|x| !x.is_null());
            let token = shape
                .members
                .get(req)
                .is_some_and(|m| m.traits.idempotency_token == Some(true));
            if !present && !token {
                errors.push(ParamError {
                    path: join(path, req),
                    kind: ParamErrorKind::MissingRequired,
                });
            }
        }
        if shape.union {
            let set = obj
                .iter()
                .filter(|(k, x)| !x.is_null() && shape.members.contains_key(*k))
                .count();
            if set != 1 {
                errors.push(ParamError {
                    path: path.to_string(),
                    kind: ParamErrorKind::UnionMembers {
                        set,
                        members: shape.members.keys().cloned().collect(),
                    },
                });
            }
        }
    }

    /// A map's size, its keys' lengths and its values.
    fn map(
        &self,
        shape: &Shape,
        (key, value): (&ShapeRef, &ShapeRef),
        entries: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<ParamError>,
    ) {
        self.range(
            shape,
            "number of entries",
            entries.len() as f64,
            path,
            errors,
        );
        // Keys are strings by construction; like botocore, their length is checked
        // but not their enum (enums are open: services add values before models do).
        let key = self.model.target(key);
        for (k, x) in entries {
            let p = join(path, k);
            self.range(key, "length", k.chars().count() as f64, &p, errors);
            self.value(value, x, &p, false, errors);
        }
    }

    /// A string's length and enum.
    fn string(&self, shape: &Shape, s: &str, path: &str, errors: &mut Vec<ParamError>) {
        self.range(shape, "length", s.chars().count() as f64, path, errors);
        if let ShapeKind::String { enum_values } = &shape.kind
            && !enum_values.is_empty()
            && !enum_values.iter().any(|a| a == s)
        {
            errors.push(ParamError {
                path: path.to_string(),
                kind: ParamErrorKind::NotInEnum {
                    value: s.to_string(),
                    allowed: enum_values.clone(),
                },
            });
        }
    }
}
