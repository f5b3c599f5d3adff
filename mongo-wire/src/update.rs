//! Update operators for `update` (and upserts): `$set`, `$setOnInsert`, `$unset`, `$inc` and
//! whole-document replacement, with MongoDB's `_id` immutability; and the document an upsert
//! starts from (the filter's equality conditions). Anything else is a `FailedToParse` error.

use bson::{Bson, Document};

use crate::error::{CmdError, QResult};
use crate::query::{
    add_numbers, bson_eq, is_number, is_operator_doc, lookup, remove_path, set_path,
};

fn is_operator_update(u: &Document) -> bool {
    u.keys().next().is_some_and(|k| k.starts_with('$'))
}

/// Applies an update document (operators or a replacement) to `doc` in place.
pub(crate) fn apply_update(doc: &mut Document, update: &Document, is_insert: bool) -> QResult<()> {
    let original_id = doc.get("_id").cloned();
    if !is_operator_update(update) {
        let mut new = Document::new();
        if let Some(id) = &original_id {
            new.insert("_id", id.clone());
        }
        for (k, v) in update {
            if k.starts_with('$') {
                return Err(CmdError::failed_to_parse(
                    "replacement document cannot mix update operators",
                ));
            }
            if k == "_id" {
                if let Some(id) = &original_id {
                    if !bson_eq(id, v) {
                        return Err(immutable_id());
                    }
                    continue;
                }
            }
            new.insert(k.clone(), v.clone());
        }
        *doc = new;
        return Ok(());
    }
    for (op, fields) in update {
        let Bson::Document(fields) = fields else {
            return Err(CmdError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {:?} instead",
                fields.element_type()
            )));
        };
        match op.as_str() {
            "$set" => {
                for (path, v) in fields {
                    set_path(doc, path, v.clone())?;
                }
            }
            "$setOnInsert" => {
                if is_insert {
                    for (path, v) in fields {
                        set_path(doc, path, v.clone())?;
                    }
                }
            }
            "$unset" => {
                for (path, _) in fields {
                    remove_path(doc, path);
                }
            }
            "$inc" => {
                for (path, v) in fields {
                    if !is_number(v) {
                        return Err(CmdError::type_mismatch(format!(
                            "Cannot increment with non-numeric argument: {{{path}: {v}}}"
                        )));
                    }
                    let new = match lookup(doc, path) {
                        None => v.clone(),
                        Some(cur) => add_numbers(cur, v).ok_or_else(|| {
                            CmdError::type_mismatch(format!(
                                "Cannot apply $inc to a value of non-numeric type at '{path}'"
                            ))
                        })?,
                    };
                    set_path(doc, path, new)?;
                }
            }
            other => {
                return Err(CmdError::failed_to_parse(format!(
                    "Unknown modifier: {other} (not supported by mongo-wire)"
                )))
            }
        }
    }
    if let Some(id) = &original_id {
        match doc.get("_id") {
            Some(now) if bson_eq(id, now) => {}
            _ => return Err(immutable_id()),
        }
    }
    Ok(())
}

fn immutable_id() -> CmdError {
    CmdError::new(
        66,
        "ImmutableField",
        "Performing an update on the path '_id' would modify the immutable field '_id'",
    )
}

/// The document an upsert starts from: the filter's equality conditions.
pub(crate) fn upsert_seed(filter: &Document) -> Document {
    let mut out = Document::new();
    seed_into(filter, &mut out);
    out
}

fn seed_into(filter: &Document, out: &mut Document) {
    for (k, v) in filter {
        if k == "$and" {
            if let Bson::Array(clauses) = v {
                for c in clauses {
                    if let Bson::Document(c) = c {
                        seed_into(c, out);
                    }
                }
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match is_operator_doc(v) {
            None => {
                let _ = set_path(out, k, v.clone());
            }
            Some(ops) => {
                if let Some(eq) = ops.get("$eq") {
                    let _ = set_path(out, k, eq.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn updates_apply() {
        let mut d = doc! { "_id": 1, "n": 1 };
        apply_update(
            &mut d,
            &doc! { "$inc": { "n": 2i64 }, "$set": { "x.y": "z" } },
            false,
        )
        .expect("valid update");
        assert_eq!(d, doc! { "_id": 1, "n": 3i64, "x": { "y": "z" } });
        assert!(apply_update(&mut d, &doc! { "$set": { "_id": 2 } }, false).is_err());
    }

    #[test]
    fn hostile_deep_paths_do_not_recurse() {
        let deep = vec!["a"; 1_000_000].join(".");
        let mut u = Document::new();
        u.insert(deep.clone(), 1);
        let mut target = doc! { "a": 1 };
        assert!(apply_update(&mut target, &doc! { "$set": u.clone() }, false).is_err());
        assert!(apply_update(&mut target, &doc! { "$unset": u }, false).is_ok());
        let mut seed = Document::new();
        seed.insert(deep, 1);
        let _ = upsert_seed(&seed);
    }
}
