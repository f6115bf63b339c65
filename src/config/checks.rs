//! Single-value checks shared by the validator: required keys, integer ranges, addresses,
//! timeouts. Each failure names the table (`ctx`, e.g. `pool "gpu" backend 2`) and the key, and
//! points at the value (or, for a missing key, at the table that lacks it).
//!
//! These checks must never substitute a default for a value that is present but wrong.

use super::addr::parse_socket_addr;
use super::duration::{format_duration, parse_duration};
use super::error::{ConfigError, Locator};
use super::limits::MAX_TIMEOUT;
use super::raw::RawDuration;
use super::size::{format_size, parse_size, RawSize};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

pub(super) struct Checker<'a> {
    pub loc: &'a Locator<'a>,
}

impl Checker<'_> {
    pub fn err(&self, span: &Range<usize>, message: String) -> ConfigError {
        self.loc.invalid(span, message)
    }

    /// An integer as the file writes it (a literal too large for TOML shows as written).
    pub fn shown(&self, value: &Spanned<i64>) -> String {
        self.loc.shown(value.span().start, *value.get_ref())
    }

    /// The value of a required key, or an error at the table (`table`) that lacks it.
    pub fn required<'v, T>(
        &self,
        value: &'v Option<Spanned<T>>,
        table: &Range<usize>,
        ctx: &str,
        key: &str,
    ) -> Result<&'v Spanned<T>, ConfigError> {
        value
            .as_ref()
            .ok_or_else(|| self.err(table, format!("{ctx}: missing required key `{key}`")))
    }

    /// A required, non-empty name.
    pub fn name<'v>(
        &self,
        value: &'v Option<Spanned<String>>,
        table: &Range<usize>,
        ctx: &str,
    ) -> Result<&'v Spanned<String>, ConfigError> {
        let name = self.required(value, table, ctx, "name")?;
        if name.get_ref().trim().is_empty() {
            return Err(self.err(&name.span(), format!("{ctx}: `name` must not be empty")));
        }
        Ok(name)
    }

    /// An integer key within `lo..=hi`, or `default` when absent.
    pub fn int(
        &self,
        value: &Option<Spanned<i64>>,
        ctx: &str,
        key: &str,
        (lo, hi): (i64, i64),
        default: i64,
    ) -> Result<i64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let v = *value.get_ref();
        if v < lo {
            return Err(self.err(
                &value.span(),
                format!(
                    "{ctx}: `{key}` must be at least {lo}, got {}",
                    self.shown(value)
                ),
            ));
        }
        if v > hi {
            return Err(self.err(
                &value.span(),
                format!(
                    "{ctx}: `{key}` must be at most {hi}, got {}",
                    self.shown(value)
                ),
            ));
        }
        Ok(v)
    }

    /// An integer key that must be a power of two within `lo..=hi` (both powers of two).
    pub fn pow2(
        &self,
        value: &Option<Spanned<i64>>,
        ctx: &str,
        key: &str,
        (lo, hi): (u32, u32),
        default: u32,
    ) -> Result<u32, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let v = *value.get_ref();
        match u32::try_from(v) {
            Ok(n) if n.is_power_of_two() && (lo..=hi).contains(&n) => Ok(n),
            _ => Err(self.err(
                &value.span(),
                format!(
                    "{ctx}: `{key}` must be a power of two from {lo} to {hi}, got {}",
                    self.shown(value)
                ),
            )),
        }
    }

    /// A literal `IP:port` address (a bind: it must be an address of this host, known before
    /// any DNS answers). The message says which part is wrong (see `addr`).
    pub fn socket_addr(
        &self,
        value: &Spanned<String>,
        ctx: &str,
        key: &str,
        example: &str,
    ) -> Result<SocketAddr, ConfigError> {
        parse_socket_addr(value.get_ref()).map_err(|why| {
            self.err(
                &value.span(),
                format!(
                    "{ctx}: `{key}` expected IP:port such as \"{example}\", got {:?}: {why}",
                    value.get_ref()
                ),
            )
        })
    }

    /// A timeout: a duration string, greater than zero and at most `MAX_TIMEOUT`.
    pub fn timeout(
        &self,
        value: &Option<Spanned<RawDuration>>,
        ctx: &str,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => self.duration(value, ctx, key, false),
        }
    }

    /// A duration that may be zero ("0s" turns the feature off), at most `MAX_TIMEOUT`.
    pub fn duration_or_zero(
        &self,
        value: &Option<Spanned<RawDuration>>,
        ctx: &str,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) => self.duration(value, ctx, key, true),
        }
    }

    /// A float key within `(lo, hi]`, or `default` when absent. NaN and infinities are
    /// refused with the same message.
    pub fn float_above(
        &self,
        value: &Option<Spanned<f64>>,
        ctx: &str,
        key: &str,
        (lo, hi): (f64, f64),
        default: f64,
    ) -> Result<f64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let v = *value.get_ref();
        if v > lo && v <= hi {
            return Ok(v);
        }
        Err(self.err(
            &value.span(),
            format!("{ctx}: `{key}` must be greater than {lo:?} and at most {hi:?}, got {v:?}"),
        ))
    }

    /// One duration string, at most `MAX_TIMEOUT`, and > 0 unless `allow_zero`.
    pub fn duration(
        &self,
        value: &Spanned<RawDuration>,
        ctx: &str,
        key: &str,
        allow_zero: bool,
    ) -> Result<Duration, ConfigError> {
        let text = &value.get_ref().0;
        let d = parse_duration(text).map_err(|why| {
            self.err(
                &value.span(),
                format!("{ctx}: `{key}` = {text:?} is not a valid duration: {why}"),
            )
        })?;
        if d.is_zero() && !allow_zero {
            return Err(self.err(
                &value.span(),
                format!("{ctx}: `{key}` must be greater than 0, got {text:?}"),
            ));
        }
        if d > MAX_TIMEOUT {
            return Err(self.err(
                &value.span(),
                format!(
                    "{ctx}: `{key}` must be at most {}, got {text:?}",
                    format_duration(MAX_TIMEOUT)
                ),
            ));
        }
        Ok(d)
    }

    /// A byte size (an integer, or a string such as "16KiB") within `lo..=hi`, or `default`
    /// when absent.
    pub fn size(
        &self,
        value: &Option<Spanned<RawSize>>,
        ctx: &str,
        key: &str,
        (lo, hi): (u64, u64),
        default: u64,
    ) -> Result<u64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let shown = match value.get_ref() {
            RawSize::Int(n) => self.loc.shown(value.span().start, *n),
            RawSize::Text(t) => format!("{t:?}"),
        };
        let n = parse_size(value.get_ref()).map_err(|why| {
            self.err(
                &value.span(),
                format!("{ctx}: `{key}` = {shown} is not a valid size: {why}"),
            )
        })?;
        if n < lo || n > hi {
            return Err(self.err(
                &value.span(),
                format!(
                    "{ctx}: `{key}` must be from {} to {}, got {shown}",
                    format_size(lo),
                    format_size(hi)
                ),
            ));
        }
        Ok(n)
    }
}
