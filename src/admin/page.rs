//! `GET /`: the live status page, one HTML file with its CSS and script, embedded in the
//! binary. The page fetches `/status` every second and redraws pools, backends and workers;
//! it has buttons for drain, enable and weight that call the backend actions.
//!
//! It must never need anything from outside the binary (no CDN, no framework, no fonts), and
//! never show a token: with a token configured the browser sends it as the Basic password.

pub(super) const CONTENT_TYPE: &str = "text/html; charset=utf-8";

pub(super) const HTML: &str = include_str!("page.html");

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_reads_status_and_loads_nothing_from_outside() {
        assert!(super::HTML.contains("fetch('/status'"));
        assert!(!super::HTML.contains("http://") && !super::HTML.contains("https://"));
    }
}
