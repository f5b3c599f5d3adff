//! Error responses carry the headers their status calls for, and never echo the request:
//! `Allow` on 405, `WWW-Authenticate: Bearer` on 401 (the scheme matched in any case), and
//! 404 bodies without the requested path.

use hyper::Method;

use crate::support::app::{Resp, TestApp};

fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[test]
fn method_not_allowed_names_the_allowed_methods() {
    let app = TestApp::start(0, |_| {});
    for (method, path, allow) in [
        (Method::POST, "/api/users/1", "GET"),
        (Method::DELETE, "/api/users/1/report", "GET"),
        (Method::GET, "/api/orders", "POST"),
    ] {
        let r = app.rt.block_on(TestApp::send(
            app.client.clone(),
            method.clone(),
            app.url(path),
            vec![],
            vec![],
        ));
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(r.body["error"]["code"], "method_not_allowed");
        assert_eq!(header(&r, "allow"), Some(allow), "{method} {path}");
    }
    for (method, path, allow) in [
        (Method::POST, "/metrics", "GET"),
        (Method::DELETE, "/admin/mode", "GET, PUT"),
    ] {
        let r = app.admin(method.clone(), path, vec![], "");
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(header(&r, "allow"), Some(allow), "{method} {path}");
    }
}

#[test]
fn unauthorized_asks_for_a_bearer_token_and_the_scheme_is_case_insensitive() {
    let app = TestApp::start(0, |c| c.admin.token = "s3cret".into());
    let put = |auth: Option<&str>| {
        let headers = auth
            .map(|a| vec![("authorization", a.to_string())])
            .unwrap_or_default();
        app.admin(Method::PUT, "/admin/mode", headers, r#"{"mode": "sync"}"#)
    };
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0"),
        Some("Bearers3cret"),
    ] {
        let r = put(auth);
        assert_eq!(r.status, 401, "{auth:?}: {r:?}");
        assert_eq!(header(&r, "www-authenticate"), Some("Bearer"), "{auth:?}");
    }
    for auth in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret"] {
        let r = put(Some(auth));
        assert_eq!(r.status, 200, "{auth}: {r:?}");
        assert!(header(&r, "www-authenticate").is_none());
    }
}

#[test]
fn not_found_bodies_do_not_echo_the_path() {
    let app = TestApp::start(0, |_| {});
    let long = format!("/api/{}", "x".repeat(20_000));
    for path in ["/nope-marker", long.as_str(), "/api/users/1/nope-marker"] {
        let r = app.get(path);
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(r.body["error"]["code"], "not_found");
        let text = r.body.to_string();
        assert!(
            !text.contains("nope-marker") && !text.contains("xxxxxxxxxx"),
            "{text}"
        );
        assert!(text.len() < 200, "{} bytes: {text}", text.len());
    }
    let r = app.admin(Method::GET, "/admin/nope-marker", vec![], "");
    assert_eq!(r.status, 404);
    assert!(!r.body.to_string().contains("nope-marker"), "{:?}", r.body);
}
