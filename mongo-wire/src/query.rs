//! The query language shared by `find`, `count`, `update`, `delete` and the pipeline's
//! `$match`/`$sort`/`$project`: BSON ordering and equality as MongoDB defines them (cross-type
//! order, numbers compared by value across int32/int64/double), canonical index keys, dotted
//! paths, filter matching, sort and projection. Unsupported operators are errors, never
//! silently wrong answers. Computed projection fields are evaluated by `aggregate`.

use std::cmp::Ordering;
use std::collections::HashMap;

use bson::{Bson, Document};

use crate::aggregate::{check_expr, eval_expr};
use crate::error::{CmdError, QResult};

/// MongoDB's canonical type order for comparisons and sorting.
fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 1,
        Bson::Null | Bson::Undefined => 2,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 3,
        Bson::String(_) | Bson::Symbol(_) => 4,
        Bson::Document(_) => 5,
        Bson::Array(_) => 6,
        Bson::Binary(_) => 7,
        Bson::ObjectId(_) => 8,
        Bson::Boolean(_) => 9,
        Bson::DateTime(_) => 10,
        Bson::Timestamp(_) => 11,
        Bson::RegularExpression(_) => 12,
        Bson::DbPointer(_) => 13,
        Bson::JavaScriptCode(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::MaxKey => 16,
    }
}

/// Numeric value for comparisons: integers stay exact, doubles are doubles.
enum Num {
    Int(i64),
    Float(f64),
}

fn as_num(v: &Bson) -> Option<Num> {
    match v {
        Bson::Int32(i) => Some(Num::Int(*i as i64)),
        Bson::Int64(i) => Some(Num::Int(*i)),
        Bson::Double(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

pub(crate) fn is_number(v: &Bson) -> bool {
    matches!(v, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
}

pub(crate) fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(f) => Some(*f),
        _ => None,
    }
}

/// An integer option value as MongoDB accepts it (any numeric type).
pub(crate) fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(*i as i64),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

/// Numeric addition with MongoDB's type promotion (int32 → int64 on overflow → double).
pub(crate) fn add_numbers(a: &Bson, b: &Bson) -> Option<Bson> {
    Some(match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => match x.checked_add(*y) {
            Some(s) => Bson::Int32(s),
            None => Bson::Int64(*x as i64 + *y as i64),
        },
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            let (x, y) = (as_i64(a)?, as_i64(b)?);
            match x.checked_add(y) {
                Some(s) => Bson::Int64(s),
                None => Bson::Double(x as f64 + y as f64),
            }
        }
        _ => Bson::Double(as_f64(a)? + as_f64(b)?),
    })
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    // MongoDB orders NaN below every other number and equal to itself.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    if f >= 9.3e18 {
        return Ordering::Less;
    }
    if f <= -9.3e18 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => cmp_f64(0.0, f - t),
        o => o,
    }
}

fn cmp_nums(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => cmp_f64(x, y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).reverse(),
    }
}

/// Total order over BSON values as MongoDB sorts them.
pub(crate) fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        _ if ra == 3 => match (as_num(a), as_num(b)) {
            (Some(x), Some(y)) => cmp_nums(x, y),
            _ => a.to_string().cmp(&b.to_string()),
        },
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => x.cmp(y),
        (Bson::Document(x), Bson::Document(y)) => cmp_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = cmp_bson(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then(u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then(x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => {
            x.pattern.cmp(&y.pattern).then(x.options.cmp(&y.options))
        }
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn cmp_docs(x: &Document, y: &Document) -> Ordering {
    for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
        let o = type_rank(va)
            .cmp(&type_rank(vb))
            .then_with(|| ka.cmp(kb))
            .then_with(|| cmp_bson(va, vb));
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

pub(crate) fn bson_eq(a: &Bson, b: &Bson) -> bool {
    type_rank(a) == type_rank(b) && cmp_bson(a, b) == Ordering::Equal
}

/// Appends a canonical byte key for `v`: values MongoDB considers equal (5, 5i64, 5.0) give
/// the same bytes. Used for the `_id` and secondary indexes and for `$group` keys.
pub(crate) fn index_key(v: &Bson, out: &mut Vec<u8>) {
    out.push(type_rank(v));
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => match as_num(v) {
            Some(Num::Int(i)) => {
                out.push(0);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Some(Num::Float(f)) => {
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    out.push(0);
                    out.extend_from_slice(&(f as i64).to_be_bytes());
                } else if f.is_nan() {
                    out.push(2);
                } else {
                    out.push(1);
                    out.extend_from_slice(&f.to_bits().to_be_bytes());
                }
            }
            None => {}
        },
        Bson::String(s) | Bson::Symbol(s) => {
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey => {}
        Bson::ObjectId(o) => out.extend_from_slice(&o.bytes()),
        Bson::Boolean(b) => out.push(*b as u8),
        Bson::DateTime(d) => out.extend_from_slice(&d.timestamp_millis().to_be_bytes()),
        Bson::Document(d) => {
            out.extend_from_slice(&(d.len() as u64).to_be_bytes());
            for (k, v) in d {
                out.extend_from_slice(&(k.len() as u64).to_be_bytes());
                out.extend_from_slice(k.as_bytes());
                index_key(v, out);
            }
        }
        Bson::Array(a) => {
            out.extend_from_slice(&(a.len() as u64).to_be_bytes());
            for v in a {
                index_key(v, out);
            }
        }
        other => {
            let s = format!("{other:?}");
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

pub(crate) fn key_of(v: &Bson) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    index_key(v, &mut out);
    out
}

/// The value at a dotted path, without array expansion (sort keys, group keys, projection).
pub(crate) fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get(p)?,
            Bson::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Every value a filter on `path` is compared with: arrays are expanded (an array field
/// matches if the array itself or any element does) and traversed into documents.
fn collect_values<'a>(cur: &'a Bson, parts: &[&str], out: &mut Vec<&'a Bson>) {
    let Some((first, rest)) = parts.split_first() else {
        out.push(cur);
        if let Bson::Array(a) = cur {
            out.extend(a.iter());
        }
        return;
    };
    match cur {
        Bson::Document(d) => {
            if let Some(v) = d.get(*first) {
                collect_values(v, rest, out);
            }
        }
        Bson::Array(a) => {
            if let Ok(i) = first.parse::<usize>() {
                if let Some(v) = a.get(i) {
                    collect_values(v, rest, out);
                }
            }
            for e in a {
                if matches!(e, Bson::Document(_)) {
                    collect_values(e, parts, out);
                }
            }
        }
        _ => {}
    }
}

fn values_at<'a>(doc: &'a Document, path: &str) -> Vec<&'a Bson> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() > MAX_PATH_PARTS {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some((first, rest)) = parts.split_first() {
        if let Some(v) = doc.get(*first) {
            collect_values(v, rest, &mut out);
        }
    }
    out
}

fn eq_any(values: &[&Bson], target: &Bson) -> bool {
    if values.is_empty() {
        return matches!(target, Bson::Null);
    }
    values.iter().any(|v| bson_eq(v, target))
}

pub(crate) fn is_operator_doc(v: &Bson) -> Option<&Document> {
    match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => Some(d),
        _ => None,
    }
}

/// Does `doc` match the query `filter`?
pub(crate) fn matches(doc: &Document, filter: &Document) -> QResult<bool> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let Bson::Array(clauses) = cond else {
                    return Err(CmdError::bad_value(format!("{key} must be an array")));
                };
                let mut results = Vec::with_capacity(clauses.len());
                for c in clauses {
                    let Bson::Document(c) = c else {
                        return Err(CmdError::bad_value(format!(
                            "{key} entries must be objects"
                        )));
                    };
                    results.push(matches(doc, c)?);
                }
                match key.as_str() {
                    "$and" => results.iter().all(|r| *r),
                    "$or" => results.iter().any(|r| *r),
                    _ => !results.iter().any(|r| *r),
                }
            }
            "$comment" => true,
            k if k.starts_with('$') => {
                return Err(CmdError::bad_value(format!(
                    "unknown top level operator: {k}"
                )))
            }
            path => match_path(doc, path, cond)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A regular expression in a filter position that would pattern-match in MongoDB: an error
/// here, not an equality test that silently never matches.
fn reject_regex(v: &Bson) -> QResult<()> {
    match v {
        Bson::RegularExpression(_) => Err(CmdError::bad_value(
            "regular expressions are not supported by mongo-wire",
        )),
        _ => Ok(()),
    }
}

fn match_path(doc: &Document, path: &str, cond: &Bson) -> QResult<bool> {
    reject_regex(cond)?;
    let values = values_at(doc, path);
    match is_operator_doc(cond) {
        Some(ops) => {
            for (op, operand) in ops {
                if !eval_operator(&values, op, operand)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        None => Ok(eq_any(&values, cond)),
    }
}

fn eval_operator(values: &[&Bson], op: &str, operand: &Bson) -> QResult<bool> {
    let cmp_with = |accept: fn(Ordering) -> bool| -> bool {
        if values.is_empty() {
            // A missing field compares as null only for null bounds ($gte/$lte: null).
            return matches!(operand, Bson::Null) && accept(Ordering::Equal);
        }
        values.iter().any(|v| {
            type_rank(v) == type_rank(operand) && {
                let o = cmp_bson(v, operand);
                accept(o)
            }
        })
    };
    Ok(match op {
        "$eq" => eq_any(values, operand),
        "$ne" => !eq_any(values, operand),
        "$gt" => cmp_with(|o| o == Ordering::Greater),
        "$gte" => cmp_with(|o| o != Ordering::Less),
        "$lt" => cmp_with(|o| o == Ordering::Less),
        "$lte" => cmp_with(|o| o != Ordering::Greater),
        "$in" | "$nin" => {
            let Bson::Array(list) = operand else {
                return Err(CmdError::bad_value(format!("{op} needs an array")));
            };
            list.iter().try_for_each(reject_regex)?;
            let hit = list.iter().any(|t| eq_any(values, t));
            if op == "$in" {
                hit
            } else {
                !hit
            }
        }
        "$exists" => {
            let want = match operand {
                Bson::Boolean(b) => *b,
                other => as_f64(other).is_some_and(|n| n != 0.0),
            };
            values.is_empty() != want
        }
        "$not" => {
            let Bson::Document(inner) = operand else {
                return Err(CmdError::bad_value("$not needs an object"));
            };
            for (op, operand) in inner {
                if !eval_operator(values, op, operand)? {
                    return Ok(true);
                }
            }
            false
        }
        other => {
            return Err(CmdError::bad_value(format!(
                "unknown operator: {other} (not supported by mongo-wire)"
            )))
        }
    })
}

/// Equality conditions of a filter on `field` (plain value, `$eq` or `$in`), used to pick
/// index candidates. `None`: the filter does not pin the field.
pub(crate) fn equality_values(filter: &Document, field: &str) -> Option<Vec<Bson>> {
    let cond = filter.get(field)?;
    match is_operator_doc(cond) {
        None => Some(vec![cond.clone()]),
        Some(ops) => {
            if let Some(v) = ops.get("$eq") {
                return Some(vec![v.clone()]);
            }
            if let Some(Bson::Array(list)) = ops.get("$in") {
                if list.iter().all(|v| is_operator_doc(v).is_none()) {
                    return Some(list.clone());
                }
            }
            None
        }
    }
}

// ---------------------------------------------------------------- sort

pub(crate) fn parse_sort(spec: &Document) -> QResult<Vec<(String, bool)>> {
    spec.iter()
        .map(|(k, v)| match as_f64(v) {
            Some(1.0) => Ok((k.clone(), true)),
            Some(-1.0) => Ok((k.clone(), false)),
            _ => Err(CmdError::bad_value(format!(
                "$sort key ordering must be 1 (for ascending) or -1 (for descending), got {v}"
            ))),
        })
        .collect()
}

pub(crate) fn sort_docs(docs: &mut [Document], keys: &[(String, bool)]) {
    if keys.is_empty() {
        return;
    }
    static NULL: Bson = Bson::Null;
    docs.sort_by(|a, b| {
        for (path, asc) in keys {
            let va = lookup(a, path).unwrap_or(&NULL);
            let vb = lookup(b, path).unwrap_or(&NULL);
            let o = cmp_bson(va, vb);
            if o != Ordering::Equal {
                return if *asc { o } else { o.reverse() };
            }
        }
        Ordering::Equal
    });
}

// ---------------------------------------------------------------- projection

enum Node {
    Leaf,
    Sub(HashMap<String, Node>),
}

/// Field paths deeper than BSON itself may nest are refused: the path walkers recurse once
/// per component, and a hostile `a.a.a…` key must not exhaust the stack.
pub(crate) const MAX_PATH_PARTS: usize = crate::wire::MAX_BSON_DEPTH;

fn path_too_deep(path: &str) -> bool {
    path.bytes().filter(|b| *b == b'.').count() >= MAX_PATH_PARTS
}

fn path_error(path: &str) -> CmdError {
    CmdError::new(
        28,
        "PathNotViable",
        format!(
            "field path is deeper than {MAX_PATH_PARTS} components: {}...",
            &path[..path.len().min(40)]
        ),
    )
}

fn insert_tree(tree: &mut HashMap<String, Node>, path: &str) {
    match path.split_once('.') {
        None => {
            tree.insert(path.to_string(), Node::Leaf);
        }
        Some((head, rest)) => {
            let entry = tree
                .entry(head.to_string())
                .or_insert_with(|| Node::Sub(HashMap::new()));
            if let Node::Sub(sub) = entry {
                insert_tree(sub, rest);
            }
        }
    }
}

fn include_tree(doc: &Document, tree: &HashMap<String, Node>) -> Document {
    let mut out = Document::new();
    for (k, v) in doc {
        match tree.get(k) {
            Some(Node::Leaf) => {
                out.insert(k.clone(), v.clone());
            }
            Some(Node::Sub(sub)) => match v {
                Bson::Document(d) => {
                    out.insert(k.clone(), include_tree(d, sub));
                }
                Bson::Array(a) => {
                    let items: Vec<Bson> = a
                        .iter()
                        .filter_map(|e| match e {
                            Bson::Document(d) => Some(Bson::Document(include_tree(d, sub))),
                            _ => None,
                        })
                        .collect();
                    out.insert(k.clone(), items);
                }
                _ => {}
            },
            None => {}
        }
    }
    out
}

/// Removes `path` (in every document of an array on the way); missing paths are no-ops.
pub(crate) fn remove_path(doc: &mut Document, path: &str) {
    if path_too_deep(path) {
        return;
    }
    match path.split_once('.') {
        None => {
            doc.remove(path);
        }
        Some((head, rest)) => match doc.get_mut(head) {
            Some(Bson::Document(d)) => remove_path(d, rest),
            Some(Bson::Array(a)) => {
                for e in a.iter_mut() {
                    if let Bson::Document(d) = e {
                        remove_path(d, rest);
                    }
                }
            }
            _ => {}
        },
    }
}

/// Sets `path`, creating intermediate documents. Fails if a parent is not a document.
pub(crate) fn set_path(doc: &mut Document, path: &str, value: Bson) -> QResult<()> {
    if path_too_deep(path) {
        return Err(path_error(path));
    }
    match path.split_once('.') {
        None => {
            doc.insert(path.to_string(), value);
            Ok(())
        }
        Some((head, rest)) => {
            if !doc.contains_key(head) {
                doc.insert(head.to_string(), Document::new());
            }
            match doc.get_mut(head) {
                Some(Bson::Document(d)) => set_path(d, rest, value),
                _ => Err(CmdError::new(
                    28,
                    "PathNotViable",
                    format!("cannot create field '{rest}' in element {head}"),
                )),
            }
        }
    }
}

/// A parsed `projection` (find) or `$project` stage.
pub(crate) struct Projection {
    include: Option<HashMap<String, Node>>,
    exclude: Vec<String>,
    computed: Vec<(String, Bson)>,
    id: bool,
}

impl Projection {
    pub(crate) fn parse(spec: &Document) -> QResult<Projection> {
        let mut inc = HashMap::new();
        let mut any_inc = false;
        let mut exclude = Vec::new();
        let mut computed = Vec::new();
        let mut id = true;
        for (k, v) in spec {
            if path_too_deep(k) {
                return Err(path_error(k));
            }
            let flag = match v {
                Bson::Boolean(b) => Some(*b),
                v if is_number(v) => Some(as_f64(v) != Some(0.0)),
                _ => None,
            };
            match flag {
                Some(false) if k == "_id" => id = false,
                Some(false) => exclude.push(k.clone()),
                Some(true) => {
                    if k != "_id" {
                        any_inc = true;
                    }
                    insert_tree(&mut inc, k);
                }
                None => {
                    check_expr(v)?;
                    any_inc = true;
                    computed.push((k.clone(), v.clone()));
                }
            }
        }
        if any_inc && !exclude.is_empty() {
            return Err(CmdError::new(
                31254,
                "Location31254",
                "Cannot do exclusion on a field in inclusion projection",
            ));
        }
        Ok(Projection {
            include: any_inc.then_some(inc),
            exclude,
            computed,
            id,
        })
    }

    pub(crate) fn apply(&self, doc: &Document) -> Document {
        match &self.include {
            Some(tree) => {
                let mut out = include_tree(doc, tree);
                if self.id {
                    if let Some(v) = doc.get("_id") {
                        if !out.contains_key("_id") {
                            let mut with_id = Document::new();
                            with_id.insert("_id", v.clone());
                            with_id.extend(out);
                            out = with_id;
                        }
                    }
                } else {
                    out.remove("_id");
                }
                for (k, expr) in &self.computed {
                    if let Some(v) = eval_expr(doc, expr) {
                        let _ = set_path(&mut out, k, v);
                    }
                }
                out
            }
            None => {
                let mut out = doc.clone();
                for p in &self.exclude {
                    remove_path(&mut out, p);
                }
                if !self.id {
                    out.remove("_id");
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn numbers_compare_across_types() {
        assert!(bson_eq(&Bson::Int32(5), &Bson::Int64(5)));
        assert!(bson_eq(&Bson::Int64(5), &Bson::Double(5.0)));
        assert_eq!(key_of(&Bson::Int32(5)), key_of(&Bson::Double(5.0)));
        assert_eq!(
            cmp_bson(&Bson::Int64(i64::MAX), &Bson::Double(1e30)),
            Ordering::Less
        );
        assert_eq!(
            cmp_bson(&Bson::Int32(3), &Bson::Double(3.5)),
            Ordering::Less
        );
    }

    #[test]
    fn filters_match_like_mongodb() {
        let d = doc! { "_id": 5, "a": { "b": 3 }, "tags": ["x", "y"], "s": "paid" };
        let t = |f: Document| matches(&d, &f).expect("valid filter");
        assert!(t(doc! { "_id": 5i64 }));
        assert!(t(doc! { "a.b": { "$gte": 3.0, "$lt": 4 } }));
        assert!(!t(doc! { "a.b": { "$gt": 3 } }));
        assert!(t(doc! { "tags": "y" }));
        assert!(t(doc! { "s": { "$in": ["pending", "paid"] } }));
        assert!(t(doc! { "missing": null }));
        assert!(t(doc! { "missing": { "$ne": 1 } }));
        assert!(!t(doc! { "s": { "$gt": 1 } }), "no cross-type $gt");
        assert!(t(doc! { "$or": [ { "s": "x" }, { "_id": 5 } ] }));
        assert!(matches(&d, &doc! { "a": { "$regex": "x" } }).is_err());
        let regex = Bson::RegularExpression(bson::Regex {
            pattern: "^pa".into(),
            options: String::new(),
        });
        assert!(matches(&d, &doc! { "s": regex.clone() }).is_err());
        assert!(matches(&d, &doc! { "s": { "$in": [regex] } }).is_err());
    }

    #[test]
    fn hostile_deep_paths_do_not_recurse() {
        let deep = vec!["a"; 1_000_000].join(".");
        let d = doc! { "a": 1 };
        let mut f = Document::new();
        f.insert(deep.clone(), 1);
        assert_eq!(matches(&d, &f), Ok(false));
        assert!(Projection::parse(&f).is_err());
        let mut target = d.clone();
        assert!(set_path(&mut target, &deep, Bson::Int32(1)).is_err());
        remove_path(&mut target, &deep);
        assert_eq!(target, d);
    }

    #[test]
    fn projection_includes_and_excludes() {
        let d = doc! { "_id": 1, "a": 1, "b": { "c": 2, "d": 3 } };
        let p = Projection::parse(&doc! { "b.c": 1 }).expect("valid");
        assert_eq!(p.apply(&d), doc! { "_id": 1, "b": { "c": 2 } });
        let p = Projection::parse(&doc! { "b": 0, "_id": 0 }).expect("valid");
        assert_eq!(p.apply(&d), doc! { "a": 1 });
        assert!(Projection::parse(&doc! { "a": 1, "b": 0 }).is_err());
        assert!(Projection::parse(&doc! { "x": { "$add": [1, 2] } }).is_err());
        let p = Projection::parse(&doc! { "x": "$b.c", "_id": 0 }).expect("valid");
        assert_eq!(p.apply(&d), doc! { "x": 2 });
    }
}
