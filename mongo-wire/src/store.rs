//! In-memory storage: collections of documents in insertion order, a hash index on `_id`
//! (always unique, as in MongoDB) and hash indexes for `createIndexes` specs (unique ones
//! enforced). Indexes only narrow candidates; the full filter is always re-checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bson::{Bson, Document};

use crate::error::{CmdError, QResult};
use crate::query::{self, key_of};

/// A secondary index created by `createIndexes`.
pub(crate) struct Index {
    pub name: String,
    pub key: Document,
    pub unique: bool,
    fields: Vec<String>,
    entries: HashMap<Vec<u8>, BTreeSet<u64>>,
}

impl Index {
    /// Index keys of `doc`: one per element for a single-field index on an array (multikey),
    /// plus the whole value.
    fn keys(&self, doc: &Document) -> Vec<Vec<u8>> {
        static NULL: Bson = Bson::Null;
        if let [field] = self.fields.as_slice() {
            let v = query::lookup(doc, field).unwrap_or(&NULL);
            let mut keys = vec![key_of(v)];
            if let Bson::Array(a) = v {
                keys.extend(a.iter().map(key_of));
            }
            return keys;
        }
        let mut k = Vec::new();
        for f in &self.fields {
            query::index_key(query::lookup(doc, f).unwrap_or(&NULL), &mut k);
        }
        vec![k]
    }

    fn key_value(&self, doc: &Document) -> Document {
        let mut out = Document::new();
        for f in &self.fields {
            out.insert(
                f.clone(),
                query::lookup(doc, f).cloned().unwrap_or(Bson::Null),
            );
        }
        out
    }
}

#[derive(Default)]
pub(crate) struct Collection {
    docs: BTreeMap<u64, Document>,
    next_seq: u64,
    ids: HashMap<Vec<u8>, u64>,
    pub indexes: Vec<Index>,
}

/// Which stored documents a filter may match.
pub(crate) enum Candidates {
    All,
    Seqs(Vec<u64>),
}

pub(crate) fn duplicate_key(
    ns: &str,
    index: &str,
    key_pattern: Document,
    key_value: Document,
) -> CmdError {
    CmdError::new(
        11000,
        "DuplicateKey",
        format!("E11000 duplicate key error collection: {ns} index: {index} dup key: {key_value}"),
    )
    .with_key(key_pattern, key_value)
}

impl Collection {
    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(crate) fn get(&self, seq: u64) -> Option<&Document> {
        self.docs.get(&seq)
    }

    /// Narrows a filter to index candidates when it pins `_id` or an indexed field.
    pub(crate) fn candidates(&self, filter: &Document) -> Candidates {
        if let Some(vals) = query::equality_values(filter, "_id") {
            let mut seqs: Vec<u64> = vals
                .iter()
                .filter_map(|v| self.ids.get(&key_of(v)).copied())
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            return Candidates::Seqs(seqs);
        }
        for idx in &self.indexes {
            if let [field] = idx.fields.as_slice() {
                if let Some(vals) = query::equality_values(filter, field) {
                    let mut seqs: Vec<u64> = vals
                        .iter()
                        .filter_map(|v| idx.entries.get(&key_of(v)))
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    seqs.sort_unstable();
                    seqs.dedup();
                    return Candidates::Seqs(seqs);
                }
            }
        }
        Candidates::All
    }

    /// Calls `f` on each matching document in natural order until it returns false.
    pub(crate) fn scan(
        &self,
        filter: &Document,
        mut f: impl FnMut(u64, &Document) -> bool,
    ) -> QResult<()> {
        match self.candidates(filter) {
            Candidates::Seqs(seqs) => {
                for s in seqs {
                    if let Some(d) = self.docs.get(&s) {
                        if query::matches(d, filter)? && !f(s, d) {
                            break;
                        }
                    }
                }
            }
            Candidates::All => {
                for (s, d) in &self.docs {
                    if query::matches(d, filter)? && !f(*s, d) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn check_unique(&self, ns: &str, doc: &Document, except: Option<u64>) -> QResult<()> {
        if let Some(id) = doc.get("_id") {
            if let Some(&s) = self.ids.get(&key_of(id)) {
                if Some(s) != except {
                    let mut kv = Document::new();
                    kv.insert("_id", id.clone());
                    return Err(duplicate_key(ns, "_id_", bson::doc! { "_id": 1 }, kv));
                }
            }
        }
        for idx in self.indexes.iter().filter(|i| i.unique) {
            for k in idx.keys(doc) {
                if let Some(seqs) = idx.entries.get(&k) {
                    if seqs.iter().any(|s| Some(*s) != except) {
                        return Err(duplicate_key(
                            ns,
                            &idx.name,
                            idx.key.clone(),
                            idx.key_value(doc),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn index_doc(&mut self, seq: u64, doc: &Document) {
        if let Some(id) = doc.get("_id") {
            self.ids.insert(key_of(id), seq);
        }
        for idx in &mut self.indexes {
            for k in idx.keys(doc) {
                idx.entries.entry(k).or_default().insert(seq);
            }
        }
    }

    fn unindex_doc(&mut self, seq: u64, doc: &Document) {
        if let Some(id) = doc.get("_id") {
            self.ids.remove(&key_of(id));
        }
        for idx in &mut self.indexes {
            for k in idx.keys(doc) {
                if let Some(set) = idx.entries.get_mut(&k) {
                    set.remove(&seq);
                    if set.is_empty() {
                        idx.entries.remove(&k);
                    }
                }
            }
        }
    }

    /// Inserts a document that already has an `_id`.
    pub(crate) fn insert(&mut self, ns: &str, doc: Document) -> QResult<()> {
        self.check_unique(ns, &doc, None)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index_doc(seq, &doc);
        self.docs.insert(seq, doc);
        Ok(())
    }

    pub(crate) fn replace(&mut self, ns: &str, seq: u64, doc: Document) -> QResult<()> {
        self.check_unique(ns, &doc, Some(seq))?;
        if let Some(old) = self.docs.remove(&seq) {
            self.unindex_doc(seq, &old);
        }
        self.index_doc(seq, &doc);
        self.docs.insert(seq, doc);
        Ok(())
    }

    pub(crate) fn remove(&mut self, seq: u64) {
        if let Some(old) = self.docs.remove(&seq) {
            self.unindex_doc(seq, &old);
        }
    }

    /// Adds an index; an existing one with the same name or key is kept (MongoDB's no-op).
    /// Returns whether an index was created.
    pub(crate) fn create_index(
        &mut self,
        ns: &str,
        name: String,
        key: Document,
        unique: bool,
    ) -> QResult<bool> {
        if key.keys().any(|k| k == "_id") && key.len() == 1 {
            return Ok(false);
        }
        if self.indexes.iter().any(|i| i.name == name || i.key == key) {
            return Ok(false);
        }
        let mut idx = Index {
            name,
            fields: key.keys().cloned().collect(),
            key,
            unique,
            entries: HashMap::new(),
        };
        for (seq, doc) in &self.docs {
            for k in idx.keys(doc) {
                let set = idx.entries.entry(k).or_default();
                if unique && !set.is_empty() {
                    return Err(duplicate_key(
                        ns,
                        &idx.name,
                        idx.key.clone(),
                        idx.key_value(doc),
                    ));
                }
                set.insert(*seq);
            }
        }
        self.indexes.push(idx);
        Ok(true)
    }
}

/// All databases: db name → collection name → collection.
#[derive(Default)]
pub(crate) struct Store {
    pub dbs: HashMap<String, HashMap<String, Collection>>,
}

impl Store {
    pub(crate) fn collection(&self, db: &str, coll: &str) -> Option<&Collection> {
        self.dbs.get(db)?.get(coll)
    }

    pub(crate) fn collection_mut(&mut self, db: &str, coll: &str) -> &mut Collection {
        self.dbs
            .entry(db.to_string())
            .or_default()
            .entry(coll.to_string())
            .or_default()
    }
}
