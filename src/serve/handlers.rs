//! The app's routes and their handler logic, written once for both modes (DESIGN.md §5).
//!
//! Each route follows the lecture's request shape: framework → DB (is the user valid) →
//! compute (access check) → DB (the real query) → compute (build the response) → JSON. The
//! compute segments do real hashing work sized by `workload.*`.

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::WorkloadConfig;
use crate::db::Db;
use crate::error::AppError;
use crate::workload;

/// A matched app route. Its template is the `route` label and the span name.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    User(i64),
    Report(i64),
    CreateOrder,
}

/// Route templates, the only values of the `route` label.
pub const USER: &str = "/api/users/{id}";
pub const REPORT: &str = "/api/users/{id}/report";
pub const ORDERS: &str = "/api/orders";
/// The `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

impl Route {
    pub fn template(&self) -> &'static str {
        match self {
            Route::User(_) => USER,
            Route::Report(_) => REPORT,
            Route::CreateOrder => ORDERS,
        }
    }

    /// Matches a method and path. `Err` carries the error and the template to label it with.
    pub fn match_request(method: &str, path: &str) -> Result<Route, (AppError, &'static str)> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (route, template) = match segments.as_slice() {
            ["", "api", "users", id] => (parse_id(id).map(Route::User), USER),
            ["", "api", "users", id, "report"] => (parse_id(id).map(Route::Report), REPORT),
            ["", "api", "orders"] => (Ok(Route::CreateOrder), ORDERS),
            _ => {
                return Err((
                    AppError::NotFound(format!("no route for {path}")),
                    UNMATCHED,
                ))
            }
        };
        let expected = if template == ORDERS { "POST" } else { "GET" };
        if method != expected {
            return Err((AppError::MethodNotAllowed, template));
        }
        route.map_err(|e| (e, template))
    }
}

fn parse_id(s: &str) -> Result<i64, AppError> {
    match s.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(AppError::BadRequest(format!(
            "user id must be a positive integer, got {:?}",
            truncate(s, 40)
        ))),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A successful response: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// The body of `POST /api/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    user_id: i64,
    amount_cents: i64,
    #[serde(default = "default_status")]
    status: String,
}

fn default_status() -> String {
    "pending".into()
}

const STATUSES: [&str; 4] = ["paid", "pending", "shipped", "refunded"];

/// Parses and validates an order body; 400 with a precise message otherwise.
fn parse_order(body: &[u8]) -> Result<NewOrder, AppError> {
    let order: NewOrder = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("invalid order JSON: {e}")))?;
    if order.user_id <= 0 {
        return Err(AppError::BadRequest(
            "user_id must be a positive integer".into(),
        ));
    }
    if !(1..=100_000_000).contains(&order.amount_cents) {
        return Err(AppError::BadRequest(
            "amount_cents must be between 1 and 100000000".into(),
        ));
    }
    if !STATUSES.contains(&order.status.as_str()) {
        return Err(AppError::BadRequest(format!(
            "status must be one of {STATUSES:?}"
        )));
    }
    Ok(order)
}

/// The per-request context a handler computes with.
pub struct Ctx<'a> {
    pub workload: &'a WorkloadConfig,
    pub span: &'a tracing::Span,
    pub spans: bool,
}

impl Ctx<'_> {
    /// One compute segment: real work over `data`, inside a `compute` span.
    fn compute(&self, name: &'static str, ms: f64, data: &[u8]) -> u64 {
        let span = if self.spans {
            tracing::info_span!(parent: self.span, "compute", reclaimd.segment = name)
        } else {
            tracing::Span::none()
        };
        let _entered = span.enter();
        workload::burn(ms, data)
    }
}

fn bytes_of(d: &Document) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    // Serialising an in-memory Document into a Vec cannot fail.
    let _ = d.to_writer(&mut buf);
    buf
}

/// Handles one matched request. The same code runs in both modes; only `db` differs.
pub async fn handle(
    route: &Route,
    body: &[u8],
    ctx: &Ctx<'_>,
    db: &Db<'_>,
) -> Result<Reply, AppError> {
    match *route {
        Route::User(id) => {
            let user = find_user(db, id).await?;
            let digest = ctx.compute(
                "build_response",
                ctx.workload.user_compute_ms,
                &bytes_of(&user),
            );
            Ok(Reply {
                status: 200,
                body: json!({"user": user_json(&user), "digest": format!("{digest:016x}")}),
            })
        }
        Route::Report(id) => {
            let user = find_user(db, id).await?;
            let access = ctx.compute(
                "access_check",
                ctx.workload.report_compute_ms,
                &bytes_of(&user),
            );
            let stats = db.order_stats(id).await?;
            let mut summary = Vec::new();
            for s in &stats {
                summary.extend_from_slice(s.status.as_bytes());
                summary.extend_from_slice(&s.total_cents.to_le_bytes());
            }
            summary.extend_from_slice(&access.to_le_bytes());
            let digest = ctx.compute("summarise", ctx.workload.report_compute_ms, &summary);
            let count: i64 = stats.iter().map(|s| s.count).sum();
            let total: i64 = stats.iter().map(|s| s.total_cents).sum();
            let by_status: Vec<Value> = stats
                .iter()
                .map(|s| {
                    json!({"status": s.status, "count": s.count, "total_cents": s.total_cents,
                           "avg_cents": s.avg_cents, "max_cents": s.max_cents})
                })
                .collect();
            Ok(Reply {
                status: 200,
                body: json!({
                    "user": user_json(&user),
                    "orders": {"count": count, "total_cents": total, "by_status": by_status},
                    "digest": format!("{digest:016x}"),
                }),
            })
        }
        Route::CreateOrder => {
            let order = parse_order(body)?;
            let user = find_user(db, order.user_id).await?;
            let digest = ctx.compute(
                "validate_order",
                ctx.workload.order_compute_ms,
                &bytes_of(&user),
            );
            let id = ObjectId::new();
            let created_at = DateTime::now();
            db.insert_order(doc! {
                "_id": id,
                "user_id": order.user_id,
                "amount_cents": order.amount_cents,
                "status": &order.status,
                "created_at": created_at,
            })
            .await?;
            Ok(Reply {
                status: 201,
                body: json!({
                    "id": id.to_hex(),
                    "user_id": order.user_id,
                    "amount_cents": order.amount_cents,
                    "status": order.status,
                    "created_at": created_at.try_to_rfc3339_string().unwrap_or_default(),
                    "digest": format!("{digest:016x}"),
                }),
            })
        }
    }
}

async fn find_user(db: &Db<'_>, id: i64) -> Result<Document, AppError> {
    db.find_user(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("user {id} not found")))
}

fn user_json(d: &Document) -> Value {
    let id = match d.get("_id") {
        Some(Bson::Int64(v)) => json!(v),
        Some(Bson::Int32(v)) => json!(v),
        Some(other) => json!(other.to_string()),
        None => Value::Null,
    };
    json!({
        "id": id,
        "name": d.get_str("name").unwrap_or_default(),
        "email": d.get_str("email").unwrap_or_default(),
        "tier": d.get_str("tier").unwrap_or_default(),
        "created_at": d.get_datetime("created_at").ok()
            .and_then(|t| t.try_to_rfc3339_string().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_templates_and_reject_bad_input() {
        assert_eq!(
            Route::match_request("GET", "/api/users/7"),
            Ok(Route::User(7))
        );
        assert_eq!(
            Route::match_request("GET", "/api/users/7/report"),
            Ok(Route::Report(7))
        );
        assert_eq!(
            Route::match_request("POST", "/api/orders"),
            Ok(Route::CreateOrder)
        );
        let (e, t) = Route::match_request("GET", "/api/users/abc").unwrap_err();
        assert_eq!((e.status(), t), (400, USER));
        let (e, _) = Route::match_request("GET", "/api/users/-1/report").unwrap_err();
        assert_eq!(e.status(), 400);
        let (e, t) = Route::match_request("GET", "/nope").unwrap_err();
        assert_eq!((e.status(), t), (404, UNMATCHED));
        let (e, _) = Route::match_request("DELETE", "/api/users/1").unwrap_err();
        assert_eq!(e.status(), 405);
    }

    #[test]
    fn order_validation() {
        assert!(parse_order(br#"{"user_id":1,"amount_cents":5}"#).is_ok());
        for bad in [
            &br#"{"user_id":1"#[..],
            br#"{"user_id":0,"amount_cents":5}"#,
            br#"{"user_id":1,"amount_cents":0}"#,
            br#"{"user_id":1,"amount_cents":5,"status":"stolen"}"#,
            br#"{"user_id":1,"amount_cents":5,"extra":1}"#,
            br#"[]"#,
        ] {
            assert_eq!(parse_order(bad).unwrap_err().status(), 400);
        }
    }
}
