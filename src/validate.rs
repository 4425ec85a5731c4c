//! Field validation helpers shared by every platform model.
//!
//! Validation runs on the parsed [`serde_json::Value`] before any typed
//! deserialisation, so each error names the exact path of the offending field
//! (e.g. `issueCard.cardFields[3].fieldCode`), the rule it broke and, where
//! there is one, the limit. Every error is built with
//! [`Error::validation`](crate::Error::validation).
//!
//! Lengths are counted in Unicode scalar values (`alipayplus-mpp.md` §6.2).

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::fmt;

/// Rule text for the `@`, `#`, `?` character rule (`alipayplus-mpp.md` §6.2).
pub const FORBIDDEN_CHARS_RULE: &str = "must not contain '@', '#' or '?'";

/// Rule text for ASCII control characters in constrained fields.
pub const CONTROL_CHARS_RULE: &str = "must not contain control characters";

/// Which way a payload travels; decides how strict validation is
/// (`alipayplus-mpp.md` §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the platform: required, type, length and count rules
    /// only; character rules and closed value lists are not enforced.
    Inbound,
    /// Built by us or the host to be sent: every rule is enforced.
    Outbound,
}

/// A field path such as `issueCard.cardFields[3].fieldCode`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path(String);

impl Path {
    /// A path made of its root name only, e.g. the API name `issueCard`.
    pub fn root(name: &str) -> Self {
        Path(name.to_owned())
    }

    /// The path of member `key` of this object: `root.key`.
    pub fn key(&self, key: &str) -> Self {
        // Built by hand, not `format!`: every validated member makes one.
        let mut p = String::with_capacity(self.0.len() + 1 + key.len());
        p.push_str(&self.0);
        p.push('.');
        p.push_str(key);
        Path(p)
    }

    /// The path of element `index` of this array: `root[index]`.
    pub fn index(&self, index: usize) -> Self {
        Path(format!("{}[{index}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A validation error for this path: `path: rule`, with the limit kept apart.
    pub fn error(&self, rule: impl AsRef<str>, limit: Option<String>) -> Error {
        Error::validation(self.0.clone(), rule, limit)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `v` as an object, or `path: must be an object`.
pub fn as_object<'a>(v: &'a Value, path: &Path) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| path.error("must be an object", None))
}

/// `v` as an array, or `path: must be an array`.
pub fn as_array<'a>(v: &'a Value, path: &Path) -> Result<&'a [Value]> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| path.error("must be an array", None))
}

/// `v` as a string, or `path: must be a string`.
pub fn as_str<'a>(v: &'a Value, path: &Path) -> Result<&'a str> {
    v.as_str().ok_or_else(|| path.error("must be a string", None))
}

/// At most `max` characters (Unicode scalar values).
pub fn check_max_chars(path: &Path, s: &str, max: usize) -> Result<()> {
    // A string never has more characters than bytes: skip counting short ones.
    if s.len() > max && s.chars().count() > max {
        return Err(path.error(format!("must be at most {max} characters"), Some(max.to_string())));
    }
    Ok(())
}

/// Not the empty string.
pub fn check_not_empty(path: &Path, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(path.error("must not be empty", Some("1".to_owned())));
    }
    Ok(())
}

/// At most `max` elements.
pub fn check_max_elements(path: &Path, items: &[Value], max: usize) -> Result<()> {
    if items.len() > max {
        return Err(path.error(format!("must have at most {max} elements"), Some(max.to_string())));
    }
    Ok(())
}

/// No `@`, `#`, `?` and no ASCII control characters.
pub fn check_no_forbidden_chars(path: &Path, s: &str) -> Result<()> {
    if s.contains(['@', '#', '?']) {
        return Err(path.error(FORBIDDEN_CHARS_RULE, None));
    }
    if s.chars().any(|c| c.is_ascii_control()) {
        return Err(path.error(CONTROL_CHARS_RULE, None));
    }
    Ok(())
}

/// One of `allowed`; the limit is the comma-separated list.
pub fn check_one_of(path: &Path, s: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&s) {
        return Ok(());
    }
    let list = allowed.join(", ");
    Err(path.error(format!("must be one of {list}"), Some(list)))
}

/// `min <= n <= max`; the limit is the bound that was broken.
pub fn check_range(path: &Path, n: i128, min: i128, max: i128) -> Result<()> {
    let broken = if n < min {
        min
    } else if n > max {
        max
    } else {
        return Ok(());
    };
    Err(path.error(format!("must be between {min} and {max}"), Some(broken.to_string())))
}

/// A JSON object under validation, with its path; gives typed access to
/// members with errors that name `path.member`.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    map: &'a Map<String, Value>,
    path: Path,
}

impl<'a> Object<'a> {
    /// `v` as an object at `path`, or `path: must be an object`.
    pub fn new(v: &'a Value, path: Path) -> Result<Self> {
        let map = as_object(v, &path)?;
        Ok(Object { map, path })
    }

    /// The object's own path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of member `key`.
    pub fn field(&self, key: &str) -> Path {
        self.path.key(key)
    }

    /// Member `key`; an explicit `null` counts as absent.
    pub fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Member `key`, or `path.key: is required` when absent or `null`.
    pub fn required(&self, key: &str) -> Result<&'a Value> {
        self.optional(key)
            .ok_or_else(|| self.field(key).error("is required", None))
    }

    /// A required string member of at most `max_chars` characters (if given).
    pub fn required_str(&self, key: &str, max_chars: Option<usize>) -> Result<&'a str> {
        // The path is only built for an error: valid input costs no allocation here.
        let s = self
            .required(key)?
            .as_str()
            .ok_or_else(|| self.field(key).error("must be a string", None))?;
        match max_chars {
            Some(max) if s.len() > max => check_max_chars(&self.field(key), s, max).map(|()| s),
            _ => Ok(s),
        }
    }

    /// An optional string member of at most `max_chars` characters (if given).
    pub fn optional_str(&self, key: &str, max_chars: Option<usize>) -> Result<Option<&'a str>> {
        if self.optional(key).is_none() {
            return Ok(None);
        }
        self.required_str(key, max_chars).map(Some)
    }

    /// A required array member of at most `max_elements` elements (if given).
    pub fn required_array(&self, key: &str, max_elements: Option<usize>) -> Result<&'a [Value]> {
        let items = self
            .required(key)?
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.field(key).error("must be an array", None))?;
        match max_elements {
            Some(max) if items.len() > max => check_max_elements(&self.field(key), items, max).map(|()| items),
            _ => Ok(items),
        }
    }

    /// An optional array member of at most `max_elements` elements (if given).
    pub fn optional_array(&self, key: &str, max_elements: Option<usize>) -> Result<Option<&'a [Value]>> {
        if self.optional(key).is_none() {
            return Ok(None);
        }
        self.required_array(key, max_elements).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root() -> Path {
        Path::root("issueCard")
    }

    #[test]
    fn paths_compose() {
        let p = root().key("cardFields").index(3).key("fieldCode");
        assert_eq!(p.as_str(), "issueCard.cardFields[3].fieldCode");
        assert_eq!(p.to_string(), "issueCard.cardFields[3].fieldCode");
    }

    #[test]
    fn max_chars_counts_scalar_values() {
        let p = root().key("appId");
        assert!(check_max_chars(&p, &"中".repeat(32), 32).is_ok());
        assert!(check_max_chars(&p, &"🎉".repeat(32), 32).is_ok());
        let e = check_max_chars(&p, &"中".repeat(33), 32).unwrap_err();
        assert_eq!(e.message(), "issueCard.appId: must be at most 32 characters");
        assert_eq!(e.limit(), Some("32"));
        assert_eq!(e.field(), Some("issueCard.appId"));
    }

    #[test]
    fn forbidden_and_control_chars() {
        let p = root().key("requestId");
        for bad in ["a@b", "#", "x?"] {
            let e = check_no_forbidden_chars(&p, bad).unwrap_err();
            assert_eq!(e.message(), "issueCard.requestId: must not contain '@', '#' or '?'");
        }
        for bad in ["a\u{0}", "\n", "x\u{7f}"] {
            let e = check_no_forbidden_chars(&p, bad).unwrap_err();
            assert_eq!(e.message(), "issueCard.requestId: must not contain control characters");
        }
        assert!(check_no_forbidden_chars(&p, "abc-_.:/ é\u{80}").is_ok());
    }

    #[test]
    fn enum_range_and_elements() {
        let p = root().key("x");
        let e = check_one_of(&p, "Z", &["A", "B"]).unwrap_err();
        assert_eq!(e.message(), "issueCard.x: must be one of A, B");
        assert_eq!(e.limit(), Some("A, B"));
        assert!(check_one_of(&p, "B", &["A", "B"]).is_ok());

        assert!(check_range(&p, 0, 0, 5).is_ok());
        assert!(check_range(&p, 5, 0, 5).is_ok());
        assert_eq!(check_range(&p, -1, 0, 5).unwrap_err().limit(), Some("0"));
        let e = check_range(&p, 6, 0, 5).unwrap_err();
        assert_eq!(e.message(), "issueCard.x: must be between 0 and 5");
        assert_eq!(e.limit(), Some("5"));

        let items = vec![json!(1); 3];
        assert!(check_max_elements(&p, &items, 3).is_ok());
        let e = check_max_elements(&p, &items, 2).unwrap_err();
        assert_eq!(e.message(), "issueCard.x: must have at most 2 elements");
        assert_eq!(e.limit(), Some("2"));
    }

    #[test]
    fn object_accessors() {
        let v = json!({"s": "abc", "n": 1, "a": [1, 2], "z": null});
        let o = Object::new(&v, root()).unwrap();
        assert_eq!(o.required_str("s", Some(3)).unwrap(), "abc");
        assert_eq!(
            o.required_str("s", Some(2)).unwrap_err().message(),
            "issueCard.s: must be at most 2 characters"
        );
        assert_eq!(
            o.required_str("n", None).unwrap_err().message(),
            "issueCard.n: must be a string"
        );
        assert_eq!(
            o.required_str("z", None).unwrap_err().message(),
            "issueCard.z: is required"
        );
        assert_eq!(o.optional_str("z", None).unwrap(), None);
        assert_eq!(o.optional_str("missing", None).unwrap(), None);
        assert_eq!(o.required_array("a", Some(2)).unwrap().len(), 2);
        assert_eq!(
            o.required_array("s", None).unwrap_err().message(),
            "issueCard.s: must be an array"
        );
        assert_eq!(
            Object::new(&json!([]), root()).unwrap_err().message(),
            "issueCard: must be an object"
        );
        assert_eq!(
            check_not_empty(&root().key("s"), "").unwrap_err().message(),
            "issueCard.s: must not be empty"
        );
    }
}
