//! Strict JSON input: the one parser for every body and configuration the
//! library reads.
//!
//! * [`parse_strict`]: refuses duplicate members (the last one would win
//!   silently here while a host parsing the raw bytes might see the first),
//!   naming the member by its path. Numbers keep their exact text
//!   (`serde_json`'s `arbitrary_precision`), so a body passes through
//!   unaltered and normalisation is a fixed point.
//! * [`parse_config`]: a configuration document checked against a [`Shape`]
//!   before it is deserialised, so an error names the member path and the
//!   rule (`config.connect_timeout_ms: must be an unsigned integer`) and
//!   never repeats the value, which may be a key.
//!
//! `serde_json` syntax errors carry a category and a position, never input
//! data, so they are passed on.

use crate::error::{Error, ErrorKind, Result};
use crate::validate::Path;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::cell::RefCell;
use std::fmt;

/// Rule text of a duplicate member.
pub const DUPLICATE_RULE: &str = "must appear only once (duplicate member)";

/// One step of the path to a duplicate member, innermost first while unwinding.
enum Step {
    Key(String),
    Index(usize),
}

/// The member name `serde_json` (with `arbitrary_precision`) gives a number
/// it hands over as its exact text (`serde_json::number::TOKEN`, not public).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Builds a document in one pass, refusing duplicate members. On a duplicate,
/// `found` receives the path to it (built while unwinding).
#[derive(Clone, Copy)]
struct Build<'a> {
    found: &'a RefCell<Option<Vec<Step>>>,
}

impl Build<'_> {
    fn push(&self, step: Step) {
        if let Some(path) = self.found.borrow_mut().as_mut() {
            path.push(step);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, n: f64) -> std::result::Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.push(Step::Index(items.len()));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.is_empty() && key == NUMBER_TOKEN {
                // A number, as its exact text: parsed the way serde_json's own `Value` does.
                let text: String = map.next_value()?;
                return text.parse().map(Value::Number).map_err(de::Error::custom);
            }
            let value = match map.next_value_seed(self) {
                Ok(v) => v,
                Err(e) => {
                    self.push(Step::Key(key));
                    return Err(e);
                }
            };
            // The map's own index finds a repeated name (its hasher is SipHash: an object
            // with many members cannot be made slow to check).
            match members.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    *self.found.borrow_mut() = Some(vec![Step::Key(slot.key().clone())]);
                    return Err(de::Error::custom(DUPLICATE_RULE));
                }
            }
        }
        Ok(Value::Object(members))
    }
}

/// Parses `bytes` as JSON, refusing duplicate members anywhere in the
/// document. Errors: [`ErrorKind::InvalidJson`] (`<root>: not valid JSON
/// (<category> at line L column C)`) or [`ErrorKind::Validation`] naming the
/// duplicate's path (`notifyCardRegistration.requestId: must appear only once
/// (duplicate member)`). Neither repeats input data beyond member names.
pub fn parse_strict(bytes: &[u8], root: &Path) -> Result<Value> {
    parse_inner(bytes, root, "not valid JSON")
}

/// The SHA-256 (hex) of `value` with every object's members sorted by name:
/// the fingerprint of a request's content, equal for two inputs that differ
/// only in member order or whitespace.
pub fn content_fingerprint(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut members: Vec<_> = o.iter().collect();
                members.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(members.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    crate::crypto::sha256_hex(&serde_json::to_vec(&sorted(value)).unwrap_or_default())
}

/// [`parse_strict`] for a message body: the syntax error reads
/// `<root>: body is not valid JSON (…)`.
pub fn parse_body(bytes: &[u8], root: &Path) -> Result<Value> {
    parse_inner(bytes, root, "body is not valid JSON")
}

fn parse_inner(bytes: &[u8], root: &Path, not_json: &str) -> Result<Value> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let built = Build { found: &found }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    built.map_err(|e| match found.into_inner() {
        Some(steps) => duplicate_error(root, steps),
        None => syntax_error(root, not_json, &e),
    })
}

fn syntax_error(root: &Path, not_json: &str, e: &serde_json::Error) -> Error {
    Error::new(ErrorKind::InvalidJson, format!("{root}: {not_json} ({e})")).with_field(root.as_str())
}

fn duplicate_error(root: &Path, steps: Vec<Step>) -> Error {
    let mut path = root.clone();
    for step in steps.into_iter().rev() {
        path = match step {
            Step::Key(k) => path.key(&member_name(&k)),
            Step::Index(i) => path.index(i),
        };
    }
    path.error(DUPLICATE_RULE, None)
}

/// A member name of a body as shown in an error: as is when it looks like a
/// field name (a letter or `_`, then at most 63 ASCII letters, digits, `_`,
/// `.` or single `-`), `<member>` otherwise, so a value pasted as a name (a
/// key, a phone number, a PEM fragment with its `-----`) is not repeated.
pub fn member_name(name: &str) -> String {
    let plain = name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.contains("--");
    shown_or_hidden(plain, name)
}

/// An unknown configuration member as shown in an error: as is when it is
/// lower-case snake case like every configuration member (a typo such as
/// `conect_timeout_ms`), `<member>` otherwise (a key or a phone number).
pub fn config_member_name(name: &str) -> String {
    let plain = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    shown_or_hidden(plain, name)
}

/// A configuration map key (e.g. a key version) as shown in an error: as is
/// when short (at most 8 ASCII letters, digits, `_`, `-`, `.`), `<member>` otherwise.
pub fn config_key_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 8
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    shown_or_hidden(plain, name)
}

fn shown_or_hidden(plain: bool, name: &str) -> String {
    if plain {
        name.to_string()
    } else {
        "<member>".to_string()
    }
}

// ---------------------------------------------------------------------------
// Configuration documents
// ---------------------------------------------------------------------------

/// The expected shape of a configuration value.
pub enum Shape {
    /// A string.
    Str,
    /// `true` or `false`.
    Bool,
    /// An integer in `0..=u64::MAX`.
    U64,
    /// An integer in `0..=u32::MAX`.
    U32,
    /// An integer in `i32::MIN..=i32::MAX`.
    I32,
    /// An object with these members (others are refused).
    Object(&'static [Member]),
    /// An object with any member names, every value of this shape.
    MapOf(&'static Shape),
    /// An array, every element of this shape.
    ListOf(&'static Shape),
}

/// One member of a [`Shape::Object`]. `null` counts as absent.
pub struct Member {
    /// The member name.
    pub name: &'static str,
    /// Its shape.
    pub shape: Shape,
    /// Whether it must be present (and not `null`).
    pub required: bool,
}

impl Member {
    /// A member that must be present.
    pub const fn required(name: &'static str, shape: Shape) -> Self {
        Member {
            name,
            shape,
            required: true,
        }
    }
    /// A member that may be absent or `null`.
    pub const fn optional(name: &'static str, shape: Shape) -> Self {
        Member {
            name,
            shape,
            required: false,
        }
    }
}

fn config_error(path: &Path, rule: &str, limit: Option<String>) -> Error {
    Error::new(ErrorKind::InvalidConfig, format!("{path}: {rule}"))
        .with_field(path.as_str())
        .with_limit(limit)
}

fn check_shape(v: &Value, path: &Path, shape: &Shape) -> Result<()> {
    let integer = |min: i128, max: i128, rule: &str| -> Result<()> {
        let n = match v {
            Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            Some(n) => {
                let broken = if n < min { min } else { max };
                Err(config_error(
                    path,
                    &format!("{rule} (from {min} to {max})"),
                    Some(broken.to_string()),
                ))
            }
            None => Err(config_error(path, rule, None)),
        }
    };
    match shape {
        Shape::Str if v.is_string() => Ok(()),
        Shape::Str => Err(config_error(path, "must be a string", None)),
        Shape::Bool if v.is_boolean() => Ok(()),
        Shape::Bool => Err(config_error(path, "must be true or false", None)),
        Shape::U64 => integer(0, u64::MAX.into(), "must be an unsigned integer"),
        Shape::U32 => integer(0, u32::MAX.into(), "must be an unsigned integer"),
        Shape::I32 => integer(i32::MIN.into(), i32::MAX.into(), "must be an integer"),
        Shape::Object(members) => {
            let map = v
                .as_object()
                .ok_or_else(|| config_error(path, "must be an object", None))?;
            for (name, value) in map {
                let Some(m) = members.iter().find(|m| m.name == name) else {
                    return Err(config_error(
                        &path.key(&config_member_name(name)),
                        "is not a known member",
                        None,
                    ));
                };
                if !value.is_null() {
                    check_shape(value, &path.key(m.name), &m.shape)?;
                }
            }
            for m in members.iter().filter(|m| m.required) {
                if map.get(m.name).is_none_or(Value::is_null) {
                    return Err(config_error(&path.key(m.name), "is required", None));
                }
            }
            Ok(())
        }
        Shape::MapOf(inner) => {
            let map = v
                .as_object()
                .ok_or_else(|| config_error(path, "must be an object", None))?;
            map.iter()
                .try_for_each(|(k, x)| check_shape(x, &path.key(&config_key_name(k)), inner))
        }
        Shape::ListOf(inner) => {
            let items = v
                .as_array()
                .ok_or_else(|| config_error(path, "must be an array", None))?;
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, x)| check_shape(x, &path.index(i), inner))
        }
    }
}

/// Removes `null` members of the objects described by `shape`, so that
/// `null` means "absent" for every optional member, defaults included.
fn drop_null_members(v: &mut Value, shape: &Shape) {
    if let (Shape::Object(members), Value::Object(map)) = (shape, v) {
        map.retain(|_, x| !x.is_null());
        for m in members.iter() {
            if let Some(x) = map.get_mut(m.name) {
                drop_null_members(x, &m.shape);
            }
        }
    }
}

/// Parses a configuration document named `root` (e.g. `config`) of the given
/// shape into `T`. Every error is [`ErrorKind::InvalidConfig`] with the
/// member path as its field, and repeats no value.
pub fn parse_config<T: DeserializeOwned>(json: &[u8], root: &str, shape: &Shape) -> Result<T> {
    let path = Path::root(root);
    let mut v = parse_strict(json, &path).map_err(|e| {
        let field = e.field().unwrap_or(root).to_string();
        Error::new(ErrorKind::InvalidConfig, e.message()).with_field(field)
    })?;
    check_shape(&v, &path, shape)?;
    drop_null_members(&mut v, shape);
    // The shape check makes this infallible; serde's own message (which
    // quotes values) is never shown.
    serde_json::from_value(v).map_err(|_| config_error(&path, "does not have the expected structure", None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Path {
        Path::root("body")
    }

    #[test]
    fn duplicates_are_refused_with_their_path() {
        let e = parse_strict(br#"{"a":1,"b":{"c":[1,{"d":2,"d":3}]}}"#, &root()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(e.message(), "body.b.c[1].d: must appear only once (duplicate member)");
        assert_eq!(e.field(), Some("body.b.c[1].d"));
        let e = parse_strict(br#"{"requestId":"A","requestId":"B"}"#, &root()).unwrap_err();
        assert_eq!(e.field(), Some("body.requestId"));
        let e = parse_strict(br#"{"13800000000":1,"13800000000":2}"#, &root()).unwrap_err();
        assert_eq!(e.field(), Some("body.<member>"), "a phone number is not a name");
        assert_eq!(
            member_name("h-----BEGINantetry"),
            "<member>",
            "a PEM fragment is not a name"
        );
        assert_eq!(member_name("x-request-id"), "x-request-id");
        let e = parse_strict(br#"{"a b":1,"a b":2}"#, &root()).unwrap_err();
        assert_eq!(e.field(), Some("body.<member>"));
        assert!(parse_strict(br#"{"a":{"x":1},"b":{"x":1}}"#, &root()).is_ok());
    }

    #[test]
    fn syntax_errors_name_the_root() {
        for bad in [&b"{"[..], b"", b"{\"a\":1} x", b"\xff"] {
            let e = parse_strict(bad, &root()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidJson);
            assert!(e.message().starts_with("body: not valid JSON ("), "{e}");
        }
    }

    #[test]
    fn numbers_keep_their_text() {
        let v = parse_strict(
            br#"{"x":9.888888888888888888e+27,"y":123456789012345678901234567890}"#,
            &root(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"x":9.888888888888888888e+27,"y":123456789012345678901234567890}"#
        );
    }

    #[test]
    fn one_pass_builds_what_serde_json_builds() {
        let doc = r#"{"a":[1,-2.5e-3,true,null,{"b":"x\u00e9\n\"y\""}],"c":{},"d":[],"e":"中","f":18446744073709551616,"g":{"h":[[[]]]}}"#.as_bytes();
        let ours = parse_strict(doc, &root()).unwrap();
        let theirs: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(serde_json::to_vec(&ours).unwrap(), serde_json::to_vec(&theirs).unwrap());
    }

    #[test]
    fn deep_nesting_is_a_clean_error() {
        for open in [b'[', b'{'] {
            let doc: Vec<u8> = if open == b'[' {
                vec![b'['; 100_000]
            } else {
                b"{\"a\":".repeat(100_000)
            };
            let e = parse_strict(&doc, &root()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidJson);
            assert!(e.message().contains("recursion limit"), "{}", e.message());
        }
    }

    static RETRY: [Member; 1] = [Member::optional("max_attempts", Shape::U32)];
    static CONFIG: [Member; 4] = [
        Member::required("client_id", Shape::Str),
        Member::optional("timeout_ms", Shape::U64),
        Member::optional("retry", Shape::Object(&RETRY)),
        Member::optional("certs", Shape::ListOf(&Shape::Str)),
    ];

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Raw {
        client_id: String,
        timeout_ms: Option<u64>,
        retry: Option<serde_json::Map<String, Value>>,
        #[serde(default)]
        certs: Vec<String>,
    }

    #[test]
    fn config_errors_name_the_path_and_rule_never_the_value() {
        let shape = Shape::Object(&CONFIG);
        let pem = "-----BEGIN PRIVATE KEY-----MIIEvQ";
        let cases = [
            (
                format!(r#"{{"client_id":"x","timeout_ms":"{pem}"}}"#),
                "config.timeout_ms: must be an unsigned integer",
            ),
            (
                r#"{"client_id":"x","timeout_ms":-1}"#.to_string(),
                "config.timeout_ms: must be an unsigned integer (from 0 to 18446744073709551615)",
            ),
            (
                format!(r#"{{"client_id":"x","retry":{{"max_attempts":"{pem}"}}}}"#),
                "config.retry.max_attempts: must be an unsigned integer",
            ),
            (
                format!(r#"{{"client_id":["{pem}"]}}"#),
                "config.client_id: must be a string",
            ),
            (r#"{"timeout_ms":1}"#.to_string(), "config.client_id: is required"),
            (
                format!(r#"{{"client_id":"x","{pem}":1}}"#),
                "config.<member>: is not a known member",
            ),
            (
                r#"{"client_id":"x","api_key":1}"#.to_string(),
                "config.api_key: is not a known member",
            ),
            (
                format!(r#"{{"client_id":"x","certs":["a",{{"k":"{pem}"}}]}}"#),
                "config.certs[1]: must be a string",
            ),
            (
                r#"{"client_id":"x","client_id":"y"}"#.to_string(),
                "config.client_id: must appear only once (duplicate member)",
            ),
            (format!("[\"{pem}\"]"), "config: must be an object"),
        ];
        for (json, want) in cases {
            let e = parse_config::<Raw>(json.as_bytes(), "config", &shape)
                .err()
                .unwrap_or_else(|| panic!("accepted {json}"));
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert_eq!(e.message(), want);
            assert!(!e.message().contains("BEGIN"), "{e}");
        }
        let ok: Raw = parse_config(br#"{"client_id":"x","timeout_ms":null,"certs":null}"#, "config", &shape).unwrap();
        assert!(ok.certs.is_empty() && ok.timeout_ms.is_none());
    }
}
