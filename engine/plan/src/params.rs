//! Run-time parameters: defaults applied, overrides parsed and checked against the runbook's
//! definitions. Used by `orgop run` (`--param k=v`) and by the fanout handler (execution input),
//! so both accept and reject exactly the same values.
use crate::ParamDef;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Parses a `--param` value for a parameter of this definition: integers, numbers and booleans
/// from their text, lists and objects as JSON, strings as given.
pub fn parse_text(def: &ParamDef, raw: &str) -> Result<Value, String> {
    match def.ty.as_str() {
        "string" => Ok(Value::String(raw.to_string())),
        "integer" => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{raw}` is not an integer")),
        "number" => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{raw}` is not a number")),
        "boolean" => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not `true` or `false`")),
        },
        _ => serde_json::from_str(raw).map_err(|e| format!("`{raw}` is not JSON: {e}")),
    }
}

fn fits(def: &ParamDef, v: &Value) -> Result<(), String> {
    let ok = match def.ty.as_str() {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "list" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    };
    if !ok {
        return Err(format!("{v} is not of type {}", def.ty));
    }
    if let (Some(n), Some(min)) = (
        v.as_f64(),
        def.minimum.as_ref().and_then(serde_json::Number::as_f64),
    ) && n < min
    {
        return Err(format!("{v} is below the minimum {min}"));
    }
    if let (Some(n), Some(max)) = (
        v.as_f64(),
        def.maximum.as_ref().and_then(serde_json::Number::as_f64),
    ) && n > max
    {
        return Err(format!("{v} is above the maximum {max}"));
    }
    if let Some(allowed) = &def.allowed
        && !allowed.contains(v)
    {
        return Err(format!("{v} is not one of the allowed values"));
    }
    Ok(())
}

/// Defaults plus overrides, every value checked. Errors name the parameter.
pub fn resolve(
    defs: &BTreeMap<String, ParamDef>,
    overrides: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for name in overrides.keys() {
        if !defs.contains_key(name) {
            let known: Vec<&str> = defs.keys().map(String::as_str).collect();
            errors.push(format!(
                "unknown parameter `{name}` (the runbook declares: {})",
                known.join(", ")
            ));
        }
    }
    for (name, def) in defs {
        match overrides.get(name).or(def.default.as_ref()) {
            Some(v) => match fits(def, v) {
                Ok(()) => {
                    out.insert(name.clone(), v.clone());
                }
                Err(e) => errors.push(format!("parameter `{name}`: {e}")),
            },
            None => errors.push(format!(
                "parameter `{name}` has no default and was not given"
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> BTreeMap<String, ParamDef> {
        serde_json::from_value(json!({
            "min_age_days": {"type": "integer", "default": 7, "minimum": 0},
            "mode": {"type": "string", "allowed": ["a", "b"]},
        }))
        .unwrap()
    }

    #[test]
    fn defaults_overrides_and_errors() {
        let d = defs();
        let got = resolve(&d, json!({"mode": "a"}).as_object().unwrap()).unwrap();
        assert_eq!(Value::Object(got), json!({"min_age_days": 7, "mode": "a"}));
        let errs = resolve(
            &d,
            json!({"min_age_days": -1, "mood": "x"})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(parse_text(&d["min_age_days"], "30").unwrap(), json!(30));
        assert!(parse_text(&d["min_age_days"], "thirty").is_err());
    }
}
