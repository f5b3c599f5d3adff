//! Reliability checks that fit a test: the admin-token matrix. The long, black-box checks
//! (overload, DB faults, config churn, hostile and slow clients, shutdown, soak) are in
//! `ci/reliability.sh`; RELIABILITY.md records both.

use hyper::Method;
use reclaimd::api::Mode;

use crate::support::app::TestApp;

/// `Authorization` headers a client may send, and whether each carries the token `s3cret`.
const HEADERS: &[(Option<&str>, bool)] = &[
    (None, false),
    (Some("Bearer s3cret"), true),
    (Some("bearer s3cret"), true),
    (Some("BEARER s3cret"), true),
    (Some("bEaReR s3cret"), true),
    (Some("Bearer   s3cret  "), true),
    (Some("Bearer wrong"), false),
    (Some("Bearer s3cre"), false),
    (Some("Bearer s3cretX"), false),
    (Some("Bearer S3CRET"), false),
    (Some("Bearer "), false),
    (Some("Bearer"), false),
    (Some("s3cret"), false),
    (Some("Basic czNjcmV0"), false),
    (Some("Bearer\ts3cret"), false),
    (Some("Token s3cret"), false),
    (Some(""), false),
];

/// Every `Authorization` header against a daemon with and without `admin.token`, on GET and
/// PUT `/admin/mode`: GET always answers the mode; PUT flips it only with the right token
/// (scheme in any case), answers 401 + `WWW-Authenticate: Bearer` otherwise, and 403 whatever
/// the header when no token is configured. Each PUT asks for the other mode, so a PUT let
/// through by mistake shows in the mode.
#[test]
fn admin_token_matrix() {
    for configured in ["", "s3cret"] {
        let app = TestApp::start(0, |c| c.admin.token = configured.into());
        let mut mode = Mode::Sync;
        for &(header, right) in HEADERS {
            let headers = || {
                header
                    .map(|h| vec![("authorization", h.to_string())])
                    .unwrap_or_default()
            };
            let case = format!("token {configured:?}, Authorization {header:?}");

            let get = app.admin(Method::GET, "/admin/mode", headers(), "");
            assert_eq!(get.status, 200, "GET, {case}: {get:?}");
            assert_eq!(get.body["mode"], mode.as_str(), "GET, {case}");

            let other = match mode {
                Mode::Sync => Mode::Async,
                Mode::Async => Mode::Sync,
            };
            let body = format!(r#"{{"mode": "{other}"}}"#);
            let put = app.admin(Method::PUT, "/admin/mode", headers(), &body);
            let expected = match (configured.is_empty(), right) {
                (true, _) => 403,
                (false, true) => 200,
                (false, false) => 401,
            };
            assert_eq!(put.status, expected, "PUT, {case}: {put:?}");
            match expected {
                200 => {
                    assert_eq!(put.body["mode"], other.as_str(), "{case}");
                    assert_eq!(put.body["previous"], mode.as_str(), "{case}");
                    mode = other;
                }
                401 => {
                    assert_eq!(put.body["error"]["code"], "unauthorized", "{case}");
                    assert_eq!(
                        put.headers.get("www-authenticate").map(|v| v.as_bytes()),
                        Some(&b"Bearer"[..]),
                        "{case}"
                    );
                }
                _ => assert_eq!(put.body["error"]["code"], "forbidden", "{case}"),
            }
            assert_eq!(app.server().app.mode(), mode, "after PUT, {case}");
            assert_eq!(app.get("/api/users/1").mode(), mode, "served in, {case}");

            for method in [Method::POST, Method::DELETE, Method::PATCH] {
                let r = app.admin(method.clone(), "/admin/mode", headers(), &body);
                assert_eq!(r.status, 405, "{method}, {case}: {r:?}");
                assert_eq!(r.headers["allow"], "GET, PUT", "{method}, {case}");
            }
        }
    }
}
