//! Scrubbing recorded responses before they are written (`orgop record`): account ids, access
//! key ids, secret access keys and session tokens become placeholders, the same real value
//! always the same placeholder, so that what the runbook compares and joins still matches.
//!
//! - Account ids: the ones given ([`Scrubber::account`]: the item's, the caller's, in that
//!   order), and every 12-digit account id found in an ARN (`arn:aws:svc:region:ACCOUNT:..`)
//!   (its account field, or a 12-digit part of its resource, as Organizations' account ARNs
//!   have), or in a field whose name says it holds one (`OwnerId`, `AccountId`, `Owner`,
//!   `UserId`, `Account...`, a 12-digit `Id`), become `111111111111`, `222222222222`, ... `999999999999`, then
//!   `100000000010`, `100000000011`, ... Each is replaced wherever it appears in a string or a
//!   key, as a whole number (not inside a longer run of digits).
//! - Access key ids (`AKIA`/`ASIA` and 16 upper-case letters or digits) become
//!   `AKIAEXAMPLE000000001`-style placeholders (prefix kept).
//! - Values of `SecretAccessKey`, `SessionToken`, `SecretKey`, `SecurityToken` fields, and the
//!   given secrets ([`Scrubber::secret`]: the environment's), become `SCRUBBED-...-n` wherever
//!   they appear.
use serde_json::{Map, Value};

/// Real values and their placeholders, in the order found.
#[derive(Debug, Default, Clone)]
pub struct Scrubber {
    accounts: Vec<(String, String)>,
    keys: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
}

/// What was replaced, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Account ids.
    pub accounts: usize,
    /// Access key ids.
    pub keys: usize,
    /// Secrets and tokens.
    pub secrets: usize,
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn account_placeholder(n: usize) -> String {
    if n <= 9 {
        char::from(b'0' + n as u8).to_string().repeat(12)
    } else {
        format!("{:012}", 100_000_000_000u64 + n as u64)
    }
}

/// Field names whose 12-digit values are account ids.
fn names_an_account(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    // `Id` of an Organizations account (a 12-digit `Id` is an account id in every AWS API).
    k.contains("owner") || k.contains("account") || k == "userid" || k == "userids" || k == "id"
}

/// Field names whose values are secrets: (placeholder stem).
fn secret_kind(key: &str) -> Option<&'static str> {
    match key.to_ascii_lowercase().as_str() {
        "secretaccesskey" | "secretkey" | "aws_secret_access_key" => Some("SECRET-ACCESS-KEY"),
        "sessiontoken" | "securitytoken" | "aws_session_token" => Some("SESSION-TOKEN"),
        _ => None,
    }
}

impl Scrubber {
    /// Nothing known yet.
    pub fn new() -> Scrubber {
        Scrubber::default()
    }

    /// Adds an account id (ignored unless 12 digits); answers its placeholder.
    pub fn account(&mut self, id: &str) -> String {
        if let Some((_, p)) = self.accounts.iter().find(|(r, _)| r == id) {
            return p.clone();
        }
        if !is_account(id) || self.accounts.iter().any(|(_, p)| p == id) {
            return id.to_string();
        }
        let mut n = self.accounts.len() + 1;
        // Never a placeholder that is a real account.
        while account_placeholder(n) == id
            || self
                .accounts
                .iter()
                .any(|(r, _)| *r == account_placeholder(n))
        {
            n += 1;
        }
        let p = account_placeholder(n);
        self.accounts.push((id.to_string(), p.clone()));
        p
    }

    /// Adds a secret to replace wherever it appears (ignored when shorter than 16
    /// characters: too likely to be ordinary text, and no real secret is).
    pub fn secret(&mut self, value: &str, stem: &str) {
        if value.len() < 16 || self.secrets.iter().any(|(r, p)| r == value || p == value) {
            return;
        }
        let n = self
            .secrets
            .iter()
            .filter(|(_, p)| p.contains(stem))
            .count()
            + 1;
        self.secrets
            .push((value.to_string(), format!("SCRUBBED-{stem}-{n}")));
    }

    fn key(&mut self, id: &str) {
        if self.keys.iter().any(|(r, p)| r == id || p == id) {
            return;
        }
        let n = self.keys.len() + 1;
        self.keys
            .push((id.to_string(), format!("{}EXAMPLE{n:09}", &id[..4])));
    }

    /// Finds what to scrub in `v`.
    pub fn discover(&mut self, v: &Value) {
        self.discover_in(None, v);
    }

    fn discover_in(&mut self, field: Option<&str>, v: &Value) {
        match v {
            Value::String(s) => {
                if let Some(f) = field {
                    if names_an_account(f) && is_account(s) {
                        self.account(s);
                    }
                    if let Some(stem) = secret_kind(f) {
                        self.secret(s, stem);
                    }
                }
                self.discover_text(s);
            }
            Value::Array(items) => {
                for x in items {
                    self.discover_in(field, x);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    self.discover_text(k);
                    self.discover_in(Some(k), x);
                }
            }
            _ => {}
        }
    }

    /// ARNs' accounts and access key ids anywhere in a text.
    fn discover_text(&mut self, s: &str) {
        let mut rest = s;
        while let Some(i) = rest.find("arn:") {
            let arn: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || ":/_+=,.@*-".contains(*c))
                .collect();
            if let Some(account) = arn.split(':').nth(4)
                && is_account(account)
            {
                self.account(account);
            }
            // Organizations names member accounts in the resource part
            // (`arn:aws:organizations::MGMT:account/o-x/MEMBER`).
            for part in arn.split([':', '/']).skip(5).filter(|p| is_account(p)) {
                self.account(part);
            }
            rest = &rest[i + 4..];
        }
        let b = s.as_bytes();
        let key_char = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
        let mut i = 0;
        while i + 20 <= b.len() {
            let at = &b[i..i + 20];
            if (at.starts_with(b"AKIA") || at.starts_with(b"ASIA"))
                && at[4..].iter().all(|c| key_char(*c))
                && (i == 0 || !key_char(b[i - 1]))
                && b.get(i + 20).is_none_or(|c| !key_char(*c))
            {
                self.key(&s[i..i + 20]);
                i += 20;
            } else {
                i += 1;
            }
        }
    }

    /// `v` with everything known replaced.
    pub fn scrub(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.scrub_text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|x| self.scrub(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (self.scrub_text(k), self.scrub(x)))
                    .collect::<Map<String, Value>>(),
            ),
            v => v.clone(),
        }
    }

    /// `s` with everything known replaced.
    pub fn scrub_text(&self, s: &str) -> String {
        let mut out = s.to_string();
        let mut secrets = self.secrets.clone();
        secrets.sort_by_key(|(r, _)| std::cmp::Reverse(r.len()));
        for (real, p) in secrets.iter().chain(&self.keys) {
            if out.contains(real.as_str()) {
                out = out.replace(real.as_str(), p);
            }
        }
        replace_accounts(&out, &self.accounts)
    }

    /// How many of each were found.
    pub fn counts(&self) -> Counts {
        Counts {
            accounts: self.accounts.len(),
            keys: self.keys.len(),
            secrets: self.secrets.len(),
        }
    }

    /// The placeholder of an account id already known.
    pub fn account_placeholder_of(&self, id: &str) -> Option<&str> {
        self.accounts
            .iter()
            .find(|(r, _)| r == id)
            .map(|(_, p)| p.as_str())
    }
}

/// `s` with each run of exactly 12 digits that `map` knows replaced, in one pass (so that a
/// placeholder is never replaced again).
fn replace_accounts(s: &str, map: &[(String, String)]) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - start == 12
            && let Some((_, p)) = map.iter().find(|(r, _)| r.as_str() == &s[start..i])
        {
            out.push_str(&s[copied..start]);
            out.push_str(p);
            copied = i;
        }
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn organizations_member_accounts_are_scrubbed_by_id_and_in_arns() {
        let mut s = Scrubber::new();
        s.account("123456789012");
        let v = json!({"Accounts": [
            {"Id": "968133698003", "Arn": "arn:aws:organizations::123456789012:account/o-abc/968133698003"},
            {"Id": "072707383384", "Arn": "arn:aws:organizations::123456789012:account/o-abc/072707383384"},
        ]});
        s.discover(&v);
        let text = s.scrub(&v).to_string();
        for real in ["123456789012", "968133698003", "072707383384"] {
            assert!(!text.contains(real), "{real} in {text}");
        }
        assert!(text.contains("account/o-abc/222222222222"), "{text}");
    }

    #[test]
    fn accounts_keys_and_secrets_map_consistently() {
        let mut s = Scrubber::new();
        assert_eq!(s.account("123456789012"), "111111111111");
        assert_eq!(s.account("210987654321"), "222222222222");
        let v = json!({
            "Snapshots": [{"OwnerId": "555555555555", "SnapshotId": "snap-1234567890123"}],
            "Arn": "arn:aws:iam::444455556666:role/x",
            "Policy": "{\"Principal\": {\"AWS\": \"arn:aws:iam::123456789012:root\"}}",
            "Credentials": {"AccessKeyId": "ASIA1234567890ABCDEF", "SecretAccessKey": "abcdefghijklmnopqrstuvwxyz0123456789ABCD", "SessionToken": "FwoGZXIvYXdzEJr//////////wEaDAAAAAAAAAAAAAAAAA"},
            "Text": "key ASIA1234567890ABCDEF again, account 123456789012, not 1234567890123",
            "210987654321": "as a key",
        });
        s.discover(&v);
        let out = s.scrub(&v);
        // (Longer runs of digits are not account ids and stay.)
        let text = out.to_string().replace("1234567890123", "");
        for real in [
            "123456789012",
            "210987654321",
            "444455556666",
            "555555555555",
            "ASIA1234567890ABCDEF",
            "abcdefghijklmnop",
            "FwoGZXIv",
        ] {
            assert!(!text.contains(real), "{real} in {text}");
        }
        assert_eq!(out["Snapshots"][0]["OwnerId"], "333333333333");
        assert_eq!(out["Snapshots"][0]["SnapshotId"], "snap-1234567890123");
        assert_eq!(out["Arn"], "arn:aws:iam::444444444444:role/x");
        assert_eq!(
            out["Text"],
            "key ASIAEXAMPLE000000001 again, account 111111111111, not 1234567890123"
        );
        assert_eq!(out["Credentials"]["AccessKeyId"], "ASIAEXAMPLE000000001");
        assert_eq!(
            out["Credentials"]["SecretAccessKey"],
            "SCRUBBED-SECRET-ACCESS-KEY-1"
        );
        assert_eq!(
            out["Credentials"]["SessionToken"],
            "SCRUBBED-SESSION-TOKEN-1"
        );
        assert_eq!(out["222222222222"], "as a key");
        // Scrubbing what is scrubbed changes nothing.
        let mut again = s.clone();
        again.discover(&out);
        assert_eq!(again.scrub(&out), out);
        assert_eq!(again.counts(), s.counts());
    }
}
