//! JSON text read with a nesting limit.
//!
//! Guarantees: [`from_json_slice`] refuses a document whose arrays and objects nest deeper
//! than [`crate::MAX_DEPTH`] before building anything (one pass over the bytes, strings
//! skipped), so no `Value` orgop holds is deeper than that: walking, cloning, printing or
//! dropping one cannot exhaust the stack, and results that wrap a value in a few more levels
//! still read back under serde_json's own limit of 128.

use serde_json::Value;

/// Why JSON text was refused.
#[derive(Debug, thiserror::Error)]
pub enum JsonTextError {
    /// Arrays and objects nest deeper than the limit.
    #[error(
        "nested deeper than {limit} levels, orgop's depth limit for JSON (AWS documents nest fewer than 25)"
    )]
    TooDeep {
        /// The limit ([`crate::MAX_DEPTH`]).
        limit: usize,
    },
    /// Not JSON.
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
}

/// Whether the arrays and objects of `bytes` nest deeper than `limit` (strings, escapes
/// included, are skipped; the text need not be valid JSON).
pub fn json_depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses JSON text nested at most [`crate::MAX_DEPTH`] levels.
pub fn from_json_slice(bytes: &[u8]) -> Result<Value, JsonTextError> {
    if json_depth_exceeds(bytes, crate::MAX_DEPTH) {
        return Err(JsonTextError::TooDeep {
            limit: crate::MAX_DEPTH,
        });
    }
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert!(!json_depth_exceeds(br#"{"a":[1,{"b":"[[[[["}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"\"[[[[","b":[[]]}"#, 3));
        let deep = "[".repeat(50_000) + &"]".repeat(50_000);
        let err = from_json_slice(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("deeper than 100 levels"), "{err}");
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(from_json_slice(ok.as_bytes()).is_ok());
    }
}
