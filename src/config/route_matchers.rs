//! One `[[listener.route]]` table as written, and its matchers compiled: every list of
//! patterns checked (glob syntax, no empty list), every value located in the file.
//!
//! A list key takes one string or an array of strings (`sni = "*.a.example"` or
//! `sni = ["a.example", "b.example"]`). Matchers are kept in a fixed order (TLS first, then
//! method, host, path, header, websocket, and `model` last, the one that may read the body).
//! This must never compile a pattern the config did not check, nor a `host` with a port (the
//! host is matched without it) or a `path_prefix` that no request path can start with.

use super::checks::Checker;
use super::error::ConfigError;
use super::routes::is_tchar;
use crate::route::{Glob, GlobError, Matcher};
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// One `[[listener.route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[listener.route]] table")]
pub(super) struct RawRoute {
    pub pool: Option<Spanned<String>>,
    pub sni: Option<Spanned<RawStrings>>,
    pub alpn: Option<Spanned<RawStrings>>,
    pub method: Option<Spanned<RawStrings>>,
    pub host: Option<Spanned<RawStrings>>,
    pub path: Option<Spanned<RawStrings>>,
    pub path_prefix: Option<Spanned<RawStrings>>,
    pub header: Option<Spanned<RawHeader>>,
    pub websocket: Option<Spanned<bool>>,
    pub model: Option<Spanned<RawStrings>>,
}

/// `header = { name = "x-tier", value = "batch" }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an inline table such as { name = \"x-tier\", value = \"batch\" }"
)]
pub(super) struct RawHeader {
    pub name: Option<Spanned<String>>,
    pub value: Option<Spanned<String>>,
}

/// One string or an array of strings; each element with its span when it has its own (a
/// lone string is located by the key's value).
#[derive(Debug)]
pub(super) struct RawStrings(pub Vec<(Option<Range<usize>>, String)>);

impl<'de> Deserialize<'de> for RawStrings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringsVisitor;
        impl<'de> Visitor<'de> for StringsVisitor {
            type Value = RawStrings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawStrings, E> {
                Ok(RawStrings(vec![(None, v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawStrings, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    let span = s.span();
                    out.push((Some(span), s.into_inner()));
                }
                Ok(RawStrings(out))
            }
        }
        deserializer.deserialize_any(StringsVisitor)
    }
}

/// The matchers of route table `r` (`ctx` names it), in the fixed order.
pub(super) fn matchers(
    check: &Checker,
    ctx: &str,
    r: &RawRoute,
) -> Result<Vec<Matcher>, ConfigError> {
    let mut out = Vec::new();
    if let Some(v) = &r.sni {
        out.push(Matcher::Sni(globs(
            check,
            ctx,
            "sni",
            v,
            Glob::caseless,
            no_port,
        )?));
    }
    if let Some(v) = &r.alpn {
        out.push(Matcher::Alpn(globs(check, ctx, "alpn", v, Glob::new, any)?));
    }
    if let Some(v) = &r.method {
        out.push(Matcher::Method(globs(
            check,
            ctx,
            "method",
            v,
            Glob::new,
            any,
        )?));
    }
    if let Some(v) = &r.host {
        out.push(Matcher::Host(globs(
            check,
            ctx,
            "host",
            v,
            Glob::caseless,
            no_port,
        )?));
    }
    if let Some(v) = &r.path {
        out.push(Matcher::Path(globs(check, ctx, "path", v, Glob::new, any)?));
    }
    if let Some(v) = &r.path_prefix {
        // Checked like globs (no empty or control characters), kept as plain prefixes.
        let checked = globs(check, ctx, "path_prefix", v, Glob::literal_brackets, slash)?;
        out.push(Matcher::PathPrefix(
            checked.iter().map(|g| g.as_str().to_string()).collect(),
        ));
    }
    if let Some(h) = &r.header {
        let table = h.span();
        let h = h.get_ref();
        let name = check.required(&h.name, &table, ctx, "header.name")?;
        if name.get_ref().is_empty() || !name.get_ref().bytes().all(is_tchar) {
            return Err(check.err(
                &name.span(),
                format!(
                    "{ctx}: `header` name {:?} is not a header name",
                    name.get_ref()
                ),
            ));
        }
        let value = check.required(&h.value, &table, ctx, "header.value")?;
        let glob = Glob::literal_brackets(value.get_ref())
            .map_err(|e| bad_glob(check, ctx, "header", &value.span(), value.get_ref(), &e))?;
        out.push(Matcher::Header {
            name: name.get_ref().to_ascii_lowercase(),
            value: glob,
        });
    }
    if let Some(ws) = &r.websocket {
        out.push(Matcher::WebSocket(*ws.get_ref()));
    }
    if let Some(v) = &r.model {
        out.push(Matcher::Model(globs(
            check,
            ctx,
            "model",
            v,
            Glob::new,
            any,
        )?));
    }
    Ok(out)
}

fn any(_: &str) -> Option<&'static str> {
    None
}

fn no_port(p: &str) -> Option<&'static str> {
    p.contains(':')
        .then_some("is matched without a port: leave the `:port` out")
}

fn slash(p: &str) -> Option<&'static str> {
    (!p.starts_with('/')).then_some("must start with \"/\", as every request path does")
}

fn bad_glob(
    check: &Checker,
    ctx: &str,
    key: &str,
    span: &Range<usize>,
    pattern: &str,
    e: &GlobError,
) -> ConfigError {
    check.err(span, format!("{ctx}: `{key}` pattern {pattern:?}: {e}"))
}

/// A non-empty list of globs built with `build`, each also passing `extra`.
fn globs(
    check: &Checker,
    ctx: &str,
    key: &str,
    value: &Spanned<RawStrings>,
    build: fn(&str) -> Result<Glob, GlobError>,
    extra: fn(&str) -> Option<&'static str>,
) -> Result<Vec<Glob>, ConfigError> {
    let items = &value.get_ref().0;
    if items.is_empty() {
        return Err(check.err(
            &value.span(),
            format!("{ctx}: `{key}` must list at least one pattern"),
        ));
    }
    items
        .iter()
        .map(|(span, pattern)| {
            let span = span.clone().unwrap_or_else(|| value.span());
            let glob = build(pattern).map_err(|e| bad_glob(check, ctx, key, &span, pattern, &e))?;
            match extra(pattern) {
                Some(why) => {
                    Err(check.err(&span, format!("{ctx}: `{key}` pattern {pattern:?} {why}")))
                }
                None => Ok(glob),
            }
        })
        .collect()
}
