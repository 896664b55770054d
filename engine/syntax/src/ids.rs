//! The shapes of AWS identifiers a runbook names in `targets` (and `orgop run` takes as
//! flags): one rule, used both by the generated JSON Schema (the patterns) and by code that
//! checks a value without a regex engine (the `is_*` functions, which accept exactly what the
//! patterns accept).

/// A region name: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
pub const REGION_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]+$";
/// An AWS account id: exactly 12 digits.
pub const ACCOUNT_ID_PATTERN: &str = "^[0-9]{12}$";
/// An organizational unit id (`ou-ab12-cd34ef56`) or the organization's root (`r-ab12`).
pub const OU_ID_PATTERN: &str = "^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$";

/// Whether `s` matches [`REGION_PATTERN`].
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    match parts.as_slice() {
        [first, middle @ .., last] if !middle.is_empty() => {
            first.len() == 2
                && lower(first)
                && middle.iter().all(|p| lower(p))
                && !last.is_empty()
                && last.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// Whether `s` matches [`ACCOUNT_ID_PATTERN`].
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` matches [`OU_ID_PATTERN`].
pub fn is_ou_id(s: &str) -> bool {
    let part = |p: &str, min: usize| {
        (min..=32).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if let Some(rest) = s.strip_prefix("ou-") {
        match rest.split_once('-') {
            Some((a, b)) => part(a, 4) && part(b, 8),
            None => false,
        }
    } else if let Some(rest) = s.strip_prefix("r-") {
        part(rest, 4)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-10",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-1",
            "us-east",
            "US-EAST-1",
            "US_EAST",
            "us-east-1a",
            "use-east-1",
            "us--1",
            "us-east-1-",
            "-us-east-1",
            "us-éast-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn accounts() {
        assert!(is_account_id("012345678901"));
        for bad in ["", "12345", "1234567890123", "12345678901a", "١٢٣٤٥٦٧٨٩٠١٢"] {
            assert!(!is_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn ous() {
        for ok in ["ou-ab12-cd34ef56", "r-ab12", "ou-abcd-12345678"] {
            assert!(is_ou_id(ok), "{ok}");
        }
        for bad in [
            "",
            "ou-",
            "ou-ab1-cd34ef56",
            "ou-ab12-cd34ef5",
            "ou-ab12",
            "OU-ab12-cd34ef56",
            "r-ab1",
            "r-",
            "ou-ab12-cd34ef56-x",
            "x-ab12",
        ] {
            assert!(!is_ou_id(bad), "{bad}");
        }
    }
}
