//! EventBridge schedule expressions: `cron(min hour day-of-month month day-of-week year)` and
//! `rate(value unit)`, with the rules EventBridge enforces (one of day-of-month and
//! day-of-week is `?`; `rate(1 hour)` singular, `rate(2 hours)` plural).

/// Checks a schedule; on error, the character offset in `s` and what is wrong.
pub fn check(s: &str) -> Result<(), (usize, String)> {
    if let Some(inner) = s.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        return rate(inner).map_err(|(o, m)| (o + 5, m));
    }
    if let Some(inner) = s.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return cron(inner).map_err(|(o, m)| (o + 5, m));
    }
    Err((0, "a schedule is `cron(...)` or `rate(...)`".into()))
}

fn rate(inner: &str) -> Result<(), (usize, String)> {
    let mut parts = inner.split(' ');
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err((
            0,
            "`rate(value unit)` takes a number and a unit, e.g. `rate(12 hours)`".into(),
        ));
    };
    let n: u64 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or((0, format!("`{value}` is not a positive whole number")))?;
    let at = value.len() + 1;
    let singular = ["minute", "hour", "day"];
    let plural = ["minutes", "hours", "days"];
    if n == 1 && !singular.contains(&unit) {
        return Err((
            at,
            format!("with 1 the unit is singular: `minute`, `hour` or `day`, not `{unit}`"),
        ));
    }
    if n > 1 && !plural.contains(&unit) {
        return Err((
            at,
            format!("with {n} the unit is plural: `minutes`, `hours` or `days`, not `{unit}`"),
        ));
    }
    Ok(())
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    extra: &'static [char],
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 6] = [
    Field {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
        extra: &[],
    },
    Field {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
        extra: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        extra: &['?', 'L', 'W'],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        extra: &[],
    },
    Field {
        name: "day-of-week",
        min: 1,
        max: 7,
        names: &DAYS,
        extra: &['?', 'L', '#'],
    },
    Field {
        name: "year",
        min: 1970,
        max: 2199,
        names: &[],
        extra: &[],
    },
];

fn cron(inner: &str) -> Result<(), (usize, String)> {
    let parts: Vec<(usize, &str)> = inner
        .split(' ')
        .scan(0usize, |pos, p| {
            let start = *pos;
            *pos += p.len() + 1;
            Some((start, p))
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if parts.len() != 6 {
        return Err((
            0,
            format!(
                "EventBridge cron has 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                parts.len()
            ),
        ));
    }
    for ((offset, text), field) in parts.iter().zip(FIELDS.iter()) {
        field_ok(text, field).map_err(|m| (*offset, m))?;
    }
    let (dom, dow) = (parts[2].1, parts[4].1);
    if (dom == "?") == (dow == "?") {
        return Err((
            parts[2].0,
            "exactly one of day-of-month and day-of-week must be `?` (e.g. `cron(0 6 * * ? *)`)"
                .into(),
        ));
    }
    Ok(())
}

fn field_ok(text: &str, f: &Field) -> Result<(), String> {
    if text == "*" || (text == "?" && f.extra.contains(&'?')) {
        return Ok(());
    }
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step
            && step.parse::<u32>().ok().filter(|s| *s > 0).is_none()
        {
            return Err(format!("`{step}` is not a valid increment in {}", f.name));
        }
        if range == "*" {
            continue;
        }
        if f.extra.contains(&'L')
            && (range == "L" || range.ends_with('L') && value(&range[..range.len() - 1], f).is_ok())
        {
            continue;
        }
        if f.extra.contains(&'W')
            && range.ends_with('W')
            && value(&range[..range.len() - 1], f).is_ok()
        {
            continue;
        }
        if f.extra.contains(&'#')
            && let Some((d, n)) = range.split_once('#')
        {
            if value(d, f).is_ok() && matches!(n, "1" | "2" | "3" | "4" | "5") {
                continue;
            }
            return Err(format!("`{range}` is not a valid `day#n` in {}", f.name));
        }
        match range.split_once('-') {
            Some((a, b)) => {
                value(a, f)?;
                value(b, f)?;
            }
            None => {
                value(range, f)?;
            }
        }
    }
    Ok(())
}

fn value(s: &str, f: &Field) -> Result<u32, String> {
    if let Some(i) = f.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(f.min + i as u32);
    }
    match s.parse::<u32>() {
        Ok(n) if (f.min..=f.max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a valid {} (expected {}-{})",
            f.name, f.min, f.max
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_eventbridge_examples() {
        for s in [
            "cron(0 10 * * ? *)",
            "cron(15 12 * * ? *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(0 0 L * ? *)",
            "cron(0 0 15W * ? 2030)",
            "rate(1 hour)",
            "rate(5 minutes)",
            "rate(7 days)",
        ] {
            assert_eq!(check(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn rejects_with_offsets() {
        assert_eq!(check("cron(0 25 * * ? *)").unwrap_err().0, 7);
        assert!(check("cron(0 6 * * * *)").unwrap_err().1.contains("`?`"));
        assert!(check("cron(0 6 * *)").unwrap_err().1.contains("6 fields"));
        assert!(check("rate(1 hours)").unwrap_err().1.contains("singular"));
        assert!(check("rate(2 hour)").unwrap_err().1.contains("plural"));
        assert!(check("rate(0 days)").is_err());
        assert!(check("every day").is_err());
        assert!(check("cron(0 6 ? * FOO *)").unwrap_err().1.contains("FOO"));
    }
}
