//! The handler logic of each route, written once for both modes.
//!
//! Each route follows the lecture's request shape: framework → DB (is the user valid) →
//! compute (access check) → DB (the real query) → compute (build the response) → JSON. The
//! compute segments do real hashing work sized by `workload.*`.

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{Call, ORDER_STATUSES};
use crate::config::WorkloadConfig;
use crate::observe::spans;
use crate::serve::db::Db;
use crate::serve::error::AppError;
use crate::serve::workload;

/// A successful response: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
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
    if !ORDER_STATUSES.contains(&order.status.as_str()) {
        return Err(AppError::BadRequest(format!(
            "status must be one of {ORDER_STATUSES:?}"
        )));
    }
    Ok(order)
}

/// The per-request context a handler computes with.
pub(crate) struct Ctx<'a> {
    pub(crate) workload: &'a WorkloadConfig,
    /// The request's span (`Span::none()` when it has none).
    pub(crate) span: &'a tracing::Span,
}

impl Ctx<'_> {
    /// One compute segment: real work over `data`, inside a `compute` span.
    fn compute(&self, name: &'static str, ms: f64, data: &[u8]) -> u64 {
        let span = spans::compute(self.span, name);
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
pub(crate) async fn handle(
    call: Call,
    body: &[u8],
    ctx: &Ctx<'_>,
    db: &Db<'_>,
) -> Result<Reply, AppError> {
    match call {
        Call::User(id) => {
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
        Call::Report(id) => {
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
        Call::Order => {
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
