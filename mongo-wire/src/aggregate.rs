//! The aggregation pipeline engine behind `aggregate`: a parsed [`Pipeline`] runs its stages
//! in order over the documents a leading `$match` selected (that `$match` is handed to the
//! store so it can use the indexes). Stages: `$match $sort $limit $skip $project $count` and
//! `$group` with `$sum $avg $min $max $first $last $push $count`. Expressions: field paths
//! (`"$a.b"`), `$$ROOT`/`$$CURRENT`, `{$literal: v}`, and objects/arrays of those; they are
//! also what computed `find` projections evaluate. Any other stage, accumulator or expression
//! operator is an error naming it, never a silently wrong answer.

use std::collections::HashMap;

use bson::{doc, Bson, Document};

use crate::error::{CmdError, QResult};
use crate::query::{self, as_i64, Projection};

/// A pipeline whose stage documents were checked to hold exactly one field each; each stage's
/// own arguments are checked when it runs.
pub(crate) struct Pipeline<'a> {
    stages: Vec<(&'a str, &'a Bson)>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn parse(stages: &[&'a Document]) -> QResult<Pipeline<'a>> {
        let mut out = Vec::with_capacity(stages.len());
        for s in stages {
            if s.len() != 1 {
                return Err(CmdError::new(
                    40323,
                    "Location40323",
                    "A pipeline stage specification object must contain exactly one field.",
                ));
            }
            if let Some((k, v)) = s.iter().next() {
                out.push((k.as_str(), v));
            }
        }
        Ok(Pipeline { stages: out })
    }

    /// Splits off a leading `$match` filter, for the store to scan with; the rest runs in
    /// [`Pipeline::run`].
    pub(crate) fn take_leading_match(&mut self) -> Option<&'a Document> {
        match self.stages.first() {
            Some(&("$match", Bson::Document(f))) => {
                self.stages.remove(0);
                Some(f)
            }
            _ => None,
        }
    }

    /// Runs every (remaining) stage in order.
    pub(crate) fn run(&self, mut docs: Vec<Document>) -> QResult<Vec<Document>> {
        for (name, spec) in &self.stages {
            docs = run_stage(docs, name, spec)?;
        }
        Ok(docs)
    }
}

/// Runs one aggregation stage after the leading `$match`.
fn run_stage(docs: Vec<Document>, name: &str, spec: &Bson) -> QResult<Vec<Document>> {
    match (name, spec) {
        ("$match", Bson::Document(f)) => {
            let mut out = Vec::with_capacity(docs.len());
            for d in docs {
                if query::matches(&d, f)? {
                    out.push(d);
                }
            }
            Ok(out)
        }
        ("$sort", Bson::Document(s)) => {
            let keys = query::parse_sort(s)?;
            let mut docs = docs;
            query::sort_docs(&mut docs, &keys);
            Ok(docs)
        }
        ("$limit", v) => {
            let n = as_i64(v)
                .filter(|n| *n > 0)
                .ok_or_else(|| CmdError::bad_value("the limit must be positive"))?;
            let mut docs = docs;
            docs.truncate(n as usize);
            Ok(docs)
        }
        ("$skip", v) => {
            let n = as_i64(v)
                .filter(|n| *n >= 0)
                .ok_or_else(|| CmdError::bad_value("the skip must be non-negative"))?;
            Ok(docs.into_iter().skip(n as usize).collect())
        }
        ("$project", Bson::Document(p)) => {
            let p = Projection::parse(p)?;
            Ok(docs.iter().map(|d| p.apply(d)).collect())
        }
        ("$count", Bson::String(field)) => {
            if docs.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![doc! { field.clone(): docs.len() as i32 }])
        }
        ("$group", Bson::Document(g)) => group(docs, g),
        (other, _) => Err(CmdError::new(
            40324,
            "Location40324",
            format!("Unrecognized pipeline stage name: '{other}' (not supported by mongo-wire)"),
        )),
    }
}

enum Acc {
    Sum(Bson),
    Avg(f64, u64),
    Min(Option<Bson>),
    Max(Option<Bson>),
    First(Option<Bson>),
    Last(Option<Bson>),
    Push(Vec<Bson>),
}

fn group(docs: Vec<Document>, spec: &Document) -> QResult<Vec<Document>> {
    let id_expr = spec.get("_id").ok_or_else(|| {
        CmdError::new(
            15955,
            "Location15955",
            "a group specification must include an _id",
        )
    })?;
    check_expr(id_expr)?;
    let mut accs: Vec<(&str, &str, &Bson)> = Vec::new();
    for (field, acc) in spec.iter().filter(|(k, _)| k.as_str() != "_id") {
        let Bson::Document(acc) = acc else {
            return Err(CmdError::new(
                40234,
                "Location40234",
                format!("The field '{field}' must be an accumulator object"),
            ));
        };
        let Some((op, arg)) = acc.iter().next() else {
            return Err(CmdError::new(
                40234,
                "Location40234",
                format!("The field '{field}' must be an accumulator object"),
            ));
        };
        if !matches!(
            op.as_str(),
            "$sum" | "$avg" | "$min" | "$max" | "$first" | "$last" | "$push" | "$count"
        ) {
            return Err(CmdError::new(
                15952,
                "Location15952",
                format!("unknown group operator '{op}' (not supported by mongo-wire)"),
            ));
        }
        check_expr(arg)?;
        accs.push((field.as_str(), op.as_str(), arg));
    }
    let mut order: Vec<(Bson, Vec<Acc>)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    static ONE: Bson = Bson::Int32(1);
    for d in &docs {
        let key = eval_expr(d, id_expr).unwrap_or(Bson::Null);
        let slot = *index.entry(query::key_of(&key)).or_insert_with(|| {
            let fresh = accs
                .iter()
                .map(|(_, op, _)| match *op {
                    "$sum" | "$count" => Acc::Sum(Bson::Int32(0)),
                    "$avg" => Acc::Avg(0.0, 0),
                    "$min" => Acc::Min(None),
                    "$max" => Acc::Max(None),
                    "$first" => Acc::First(None),
                    "$last" => Acc::Last(None),
                    _ => Acc::Push(Vec::new()),
                })
                .collect();
            order.push((key.clone(), fresh));
            order.len() - 1
        });
        for ((_, op, arg), acc) in accs.iter().zip(order[slot].1.iter_mut()) {
            let arg = if *op == "$count" { &ONE } else { *arg };
            let v = eval_expr(d, arg);
            match acc {
                Acc::Sum(total) => {
                    if let Some(v) = v.filter(query::is_number) {
                        if let Some(s) = query::add_numbers(total, &v) {
                            *total = s;
                        }
                    }
                }
                Acc::Avg(sum, n) => {
                    if let Some(x) = v.as_ref().and_then(query::as_f64) {
                        *sum += x;
                        *n += 1;
                    }
                }
                Acc::Min(m) | Acc::Max(m) => {
                    let want = if *op == "$min" {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    };
                    if let Some(v) = v.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
                        let replace = match m {
                            None => true,
                            Some(cur) => query::cmp_bson(&v, cur) == want,
                        };
                        if replace {
                            *m = Some(v);
                        }
                    }
                }
                Acc::First(f) => {
                    if f.is_none() {
                        *f = Some(v.unwrap_or(Bson::Null));
                    }
                }
                Acc::Last(l) => *l = Some(v.unwrap_or(Bson::Null)),
                Acc::Push(list) => {
                    if let Some(v) = v {
                        list.push(v);
                    }
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|(key, results)| {
            let mut out = doc! { "_id": key };
            for ((field, _, _), acc) in accs.iter().zip(results) {
                let v = match acc {
                    Acc::Sum(s) => s,
                    Acc::Avg(_, 0) => Bson::Null,
                    Acc::Avg(s, n) => Bson::Double(s / n as f64),
                    Acc::Min(m) | Acc::Max(m) | Acc::First(m) | Acc::Last(m) => {
                        m.unwrap_or(Bson::Null)
                    }
                    Acc::Push(l) => Bson::Array(l),
                };
                out.insert(*field, v);
            }
            out
        })
        .collect())
}

// ---------------------------------------------------------------- expressions

/// Rejects expression operators this double does not implement (anything but `$literal`), so
/// they fail loudly instead of being treated as plain objects.
pub(crate) fn check_expr(expr: &Bson) -> QResult<()> {
    match expr {
        Bson::Document(d) => {
            for (k, v) in d {
                if k.starts_with('$') {
                    if k != "$literal" {
                        return Err(CmdError::new(
                            31325,
                            "Location31325",
                            format!("Unrecognized expression '{k}' (not supported by mongo-wire)"),
                        ));
                    }
                } else {
                    check_expr(v)?;
                }
            }
            Ok(())
        }
        Bson::Array(a) => a.iter().try_for_each(check_expr),
        _ => Ok(()),
    }
}

/// Evaluates an aggregation expression: `"$path"`, `"$$ROOT"`, `{$literal: v}`, nested
/// objects and arrays of expressions, or a constant. `None` means "missing".
pub(crate) fn eval_expr(doc: &Document, expr: &Bson) -> Option<Bson> {
    match expr {
        Bson::String(s) if s == "$$ROOT" || s == "$$CURRENT" => Some(Bson::Document(doc.clone())),
        Bson::String(s) if s.starts_with("$$") => None,
        Bson::String(s) if s.starts_with('$') => query::lookup(doc, &s[1..]).cloned(),
        Bson::Document(d) => {
            if let Some(v) = d.get("$literal") {
                return Some(v.clone());
            }
            let mut out = Document::new();
            for (k, e) in d {
                if let Some(v) = eval_expr(doc, e) {
                    out.insert(k.clone(), v);
                }
            }
            Some(Bson::Document(out))
        }
        Bson::Array(a) => Some(Bson::Array(
            a.iter()
                .map(|e| eval_expr(doc, e).unwrap_or(Bson::Null))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}
