//! Routing `(method, path)` to what the server does, and answering the routes that need
//! no CPU work.

use crate::http::{response, Method, ResponseMode};
use crate::stats::Stats;
use crate::work::Job;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /health` (or `HEAD`): `200 ok`, answered on the connection's thread.
    Health,
    /// `POST /hash`: the BLAKE3 hash of the body, in hex (CPU work).
    Hash,
    /// `POST /compress`: the body compressed with zstd (CPU work).
    Compress,
    /// `POST /password/verify`: whether the body is the password (Argon2id, CPU work).
    PasswordVerify,
    /// `GET /stats` (or `HEAD`): the server's counters as JSON.
    Stats,
    /// No such path: 404.
    NotFound,
    /// The path exists but not with this method: 405, with this `Allow` value.
    MethodNotAllowed(&'static str),
}

impl Route {
    /// The CPU job this route runs on the pool, if any.
    pub fn job(self) -> Option<Job> {
        match self {
            Route::Hash => Some(Job::Hash),
            Route::Compress => Some(Job::Compress),
            Route::PasswordVerify => Some(Job::Verify),
            _ => None,
        }
    }
}

/// The route for `method` on `target` (the query, if any, is ignored). An
/// absolute-form target (`http://host/health`), which RFC 9112 (3.2.2) says a
/// server must accept, routes on its path.
pub fn route(method: Method, target: &str) -> Route {
    let target = origin_form(target);
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let (allowed, route) = match path {
        "/health" => (Method::Get, Route::Health),
        "/stats" => (Method::Get, Route::Stats),
        "/hash" => (Method::Post, Route::Hash),
        "/compress" => (Method::Post, Route::Compress),
        "/password/verify" => (Method::Post, Route::PasswordVerify),
        _ => return Route::NotFound,
    };
    // A GET route answers HEAD too (RFC 9110, 9.1: a general-purpose server
    // supports both), with the same head and no body (`ResponseMode::head`).
    if method == allowed || (allowed == Method::Get && method == Method::Head) {
        route
    } else {
        Route::MethodNotAllowed(if allowed == Method::Get {
            "GET, HEAD"
        } else {
            "POST"
        })
    }
}

/// The path and query of an absolute-form target (`/` if it has no path);
/// any other target as it is.
fn origin_form(target: &str) -> &str {
    if target.starts_with('/') {
        return target; // origin form, the usual case
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return target;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return target;
    }
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        // `http://host?q`: the path is empty, which means `/`.
        _ => "/",
    }
}

/// The body of `GET /health`.
pub const HEALTH_BODY: &[u8] = b"ok\n";

/// Answers `route` into `out` if it needs no CPU work (and counts its status in
/// `stats`); returns the job to run otherwise, writing nothing.
pub fn respond_inline(
    route: Route,
    mode: ResponseMode,
    stats: &Stats,
    out: &mut Vec<u8>,
) -> Option<Job> {
    let status = match route {
        Route::Health => {
            response::write(out, 200, mode, "text/plain", HEALTH_BODY);
            200
        }
        Route::Stats => {
            let json = stats.to_json();
            response::write(out, 200, mode, "application/json", json.as_bytes());
            200
        }
        Route::NotFound => {
            response::write_error(out, 404, mode, None);
            404
        }
        Route::MethodNotAllowed(allow) => {
            response::write_error(out, 405, mode, Some(allow));
            405
        }
        Route::Hash | Route::Compress | Route::PasswordVerify => return route.job(),
    };
    stats.record_status(status);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(route(Method::Get, "/health"), Route::Health);
        assert_eq!(route(Method::Get, "/health?x=1"), Route::Health);
        assert_eq!(route(Method::Get, "/stats"), Route::Stats);
        assert_eq!(route(Method::Post, "/hash"), Route::Hash);
        assert_eq!(route(Method::Post, "/compress"), Route::Compress);
        assert_eq!(
            route(Method::Post, "/password/verify"),
            Route::PasswordVerify
        );
        assert_eq!(
            route(Method::Post, "/health"),
            Route::MethodNotAllowed("GET, HEAD")
        );
        assert_eq!(route(Method::Head, "/stats"), Route::Stats);
        assert_eq!(route(Method::Head, "/health"), Route::Health);
        assert_eq!(
            route(Method::Head, "/hash"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route(Method::Get, "/hash"), Route::MethodNotAllowed("POST"));
        assert_eq!(
            route(Method::Other, "/compress"),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route(Method::Get, "/"), Route::NotFound);
        assert_eq!(route(Method::Get, "/health/"), Route::NotFound);
        assert_eq!(route(Method::Get, "*"), Route::NotFound);
        // Absolute form routes on its path.
        assert_eq!(route(Method::Get, "http://x/health"), Route::Health);
        assert_eq!(
            route(Method::Get, "HTTP://x:8080/health?a=b"),
            Route::Health
        );
        assert_eq!(route(Method::Post, "https://x/hash"), Route::Hash);
        assert_eq!(route(Method::Get, "http://x"), Route::NotFound);
        assert_eq!(route(Method::Get, "http://x?/health"), Route::NotFound);
        assert_eq!(route(Method::Get, "ftp://x/health"), Route::NotFound);
        assert_eq!(route(Method::Get, "/a://b/health"), Route::NotFound);
        assert_eq!(route(Method::Post, "/hash").job(), Some(Job::Hash));
        assert_eq!(route(Method::Get, "/health").job(), None);
    }

    #[test]
    fn inline_answers() {
        let stats = Stats::new("test");
        let mut out = Vec::new();
        assert_eq!(
            respond_inline(Route::Hash, ResponseMode::KEEP, &stats, &mut out),
            Some(Job::Hash)
        );
        assert!(out.is_empty());
        assert_eq!(
            respond_inline(Route::Health, ResponseMode::KEEP, &stats, &mut out),
            None
        );
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"\r\n\r\nok\n"));
        out.clear();
        respond_inline(
            Route::MethodNotAllowed("GET, HEAD"),
            ResponseMode::KEEP,
            &stats,
            &mut out,
        );
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .contains("\r\nAllow: GET, HEAD\r\n"));
        assert_eq!(stats.status_count(200), 1);
        assert_eq!(stats.status_count(405), 1);
    }
}
