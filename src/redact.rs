//! Redacted `Debug` forms, shared by every public type that holds keys,
//! signatures, bodies or personal data: such a type prints these stand-ins
//! instead of the values, so a `{:?}` in a log line cannot leak them.
//!
//! * bodies and other bytes: `<N bytes>`;
//! * personal values: `<redacted>` (or `None` when absent);
//! * unknown JSON members: `{..N members}` (neither names nor values);
//! * headers: the name, and the value only for a short list of headers that
//!   never carry secrets or personal data (times, ids, content type).

use crate::http::Header;
use serde_json::{Map, Value};
use std::fmt;

/// `<N bytes>`.
pub(crate) struct Bytes(pub usize);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Something present or absent whose value is never shown.
pub(crate) trait Presence {
    /// Whether there is a value to hide.
    fn present(&self) -> bool;
}

impl Presence for String {
    fn present(&self) -> bool {
        true
    }
}

impl Presence for Value {
    fn present(&self) -> bool {
        true
    }
}

impl<T> Presence for Option<T> {
    fn present(&self) -> bool {
        self.is_some()
    }
}

/// `<redacted>` for a present value, `None` for an absent one.
pub(crate) struct Hidden(pub bool);

impl Hidden {
    pub(crate) fn of(v: &impl Presence) -> Self {
        Hidden(v.present())
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "<redacted>" } else { "None" })
    }
}

/// `{..N members}`: unknown JSON members, whose names and values may be anything.
pub(crate) struct Members(pub usize);

impl Members {
    pub(crate) fn of(m: &Map<String, Value>) -> Self {
        Members(m.len())
    }
}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{..{} members}}", self.0)
    }
}

/// Header values that are printed as they are: no secrets, no personal data.
const SHOWN_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "request-time",
    "response-time",
    "client-id",
    "wechatpay-timestamp",
    "wechatpay-serial",
    "wechatpay-signature-type",
    "request-id",
    "user-agent",
];

/// Headers with every value outside [`SHOWN_HEADERS`] redacted.
pub(crate) struct Headers<'a>(pub &'a [Header]);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            if SHOWN_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) && !value.chars().any(char::is_control) {
                list.entry(&(name, value));
            } else {
                list.entry(&(name, Hidden(true)));
            }
        }
        list.finish()
    }
}

/// A request-target with its query hidden: `/path?<redacted>`.
pub(crate) struct Target<'a>(pub &'a str);

impl fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('?') {
            Some((path, _)) => write!(f, "{path:?}?<redacted>"),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// `Debug` for a struct, each field printed as is (`show`), hidden
/// (`hide`: [`Hidden`]), as a size (`bytes`: [`Bytes`]) or as a member count
/// (`members`: [`Members`]).
macro_rules! redacted_debug {
    ($ty:ident { $($field:ident : $how:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut s = f.debug_struct(stringify!($ty));
                $( $crate::redact::redacted_debug!(@field s, self, $field, $how); )*
                s.finish()
            }
        }
    };
    (@field $s:ident, $self:ident, $field:ident, show) => { $s.field(stringify!($field), &$self.$field); };
    (@field $s:ident, $self:ident, $field:ident, hide) => {
        $s.field(stringify!($field), &$crate::redact::Hidden::of(&$self.$field));
    };
    (@field $s:ident, $self:ident, $field:ident, bytes) => {
        $s.field(stringify!($field), &$crate::redact::Bytes($self.$field.len()));
    };
    (@field $s:ident, $self:ident, $field:ident, members) => {
        $s.field(stringify!($field), &$crate::redact::Members::of(&$self.$field));
    };
}
pub(crate) use redacted_debug;
