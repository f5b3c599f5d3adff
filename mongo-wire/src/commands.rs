//! Command dispatch: [`Engine::run`] takes one decoded command and returns its reply, in
//! MongoDB's reply shape. The engine owns the store and the open cursors (`firstBatch`/
//! `getMore`/`killCursors`); each command reads its arguments here and hands the work to
//! `query` (filters, sort, projection), `update`, `aggregate` or `store`. Errors are
//! `{ok: 0, errmsg, code, codeName}` replies; unknown commands get code 59 `CommandNotFound`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};

use bson::{doc, oid::ObjectId, Bson, Document};

use crate::aggregate::Pipeline;
use crate::error::{CmdError, QResult};
use crate::query::{self, as_i64, Projection};
use crate::store::Store;
use crate::update;
use crate::wire::{MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE};

/// Wire version advertised: MongoDB 7.0 (the Rust driver accepts 8..=25+; pymongo 4 needs ≥ 7).
pub(crate) const MAX_WIRE_VERSION: i32 = 21;
pub(crate) const SERVER_VERSION: &str = "7.0.0";
const DEFAULT_BATCH: usize = 101;
/// MongoDB caps a batch at 16 MiB of documents.
const BATCH_BYTES: usize = MAX_BSON_OBJECT_SIZE;
/// Open cursors kept at most; past it the oldest is discarded (MongoDB times idle cursors out
/// after 10 minutes; abandoned ones must not grow memory without bound here either).
const MAX_OPEN_CURSORS: usize = 10_000;

/// Handshake and monitoring commands: exempt from injected latency and not "data commands"
/// in the in-flight counters. Faults still apply to them.
pub(crate) fn is_handshake(name: &str) -> bool {
    matches!(
        name,
        "hello"
            | "isMaster"
            | "ismaster"
            | "buildInfo"
            | "buildinfo"
            | "ping"
            | "endSessions"
            | "saslStart"
            | "saslContinue"
            | "authenticate"
            | "getnonce"
            | "getLastError"
            | "whatsmyuri"
            | "getParameter"
            | "getCmdLineOpts"
            | "getLog"
            | "hostInfo"
            | "connectionStatus"
            | "serverStatus"
            | "atlasVersion"
    )
}

struct Cursor {
    ns: String,
    docs: VecDeque<Document>,
}

/// The command engine: the store and open cursors. Shared by all connections.
pub(crate) struct Engine {
    store: RwLock<Store>,
    cursors: Mutex<HashMap<i64, Cursor>>,
    next_cursor: AtomicI64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            store: RwLock::new(Store::default()),
            cursors: Mutex::new(HashMap::new()),
            next_cursor: AtomicI64::new(1_000_001),
        }
    }
}

fn ok(mut d: Document) -> Document {
    d.insert("ok", 1.0);
    d
}

fn coll_name<'a>(body: &'a Document, cmd: &str) -> QResult<&'a str> {
    match body.get(cmd) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(CmdError::new(
            73,
            "InvalidNamespace",
            format!("collection name must be a non-empty string in '{cmd}'"),
        )),
    }
}

fn opt_doc<'a>(body: &'a Document, key: &str) -> QResult<Option<&'a Document>> {
    match body.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(_) => Err(CmdError::type_mismatch(format!(
            "'{key}' must be an object"
        ))),
    }
}

fn opt_int(body: &Document, key: &str) -> QResult<Option<i64>> {
    match body.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => as_i64(v)
            .map(Some)
            .ok_or_else(|| CmdError::type_mismatch(format!("'{key}' must be a number"))),
    }
}

fn opt_bool(body: &Document, key: &str) -> bool {
    match body.get(key) {
        Some(Bson::Boolean(b)) => *b,
        Some(v) => query::as_f64(v).is_some_and(|n| n != 0.0),
        None => false,
    }
}

fn doc_array<'a>(body: &'a Document, key: &str) -> QResult<Vec<&'a Document>> {
    match body.get(key) {
        Some(Bson::Array(a)) => a
            .iter()
            .map(|v| match v {
                Bson::Document(d) => Ok(d),
                _ => Err(CmdError::type_mismatch(format!(
                    "'{key}' entries must be objects"
                ))),
            })
            .collect(),
        _ => Err(CmdError::failed_to_parse(format!(
            "'{key}' must be an array"
        ))),
    }
}

/// Rough encoded size of a document, to bound batches without serialising twice.
fn approx_size(d: &Document) -> usize {
    fn val(v: &Bson) -> usize {
        match v {
            Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => s.len() + 5,
            Bson::Document(d) => approx_size(d),
            Bson::Array(a) => 5 + a.iter().map(|e| 8 + val(e)).sum::<usize>(),
            Bson::Binary(b) => b.bytes.len() + 5,
            _ => 16,
        }
    }
    5 + d.iter().map(|(k, v)| k.len() + 2 + val(v)).sum::<usize>()
}

fn take_batch(docs: &mut VecDeque<Document>, limit: usize) -> Vec<Bson> {
    let mut out = Vec::new();
    let mut bytes = 0;
    while out.len() < limit {
        let Some(d) = docs.front() else { break };
        let size = approx_size(d);
        if !out.is_empty() && bytes + size > BATCH_BYTES {
            break;
        }
        bytes += size;
        if let Some(d) = docs.pop_front() {
            out.push(Bson::Document(d));
        }
    }
    out
}

impl Engine {
    /// Runs one command and returns its reply (errors are `ok: 0` replies).
    pub(crate) fn run(&self, db: &str, body: &Document, connection_id: i64) -> Document {
        let name = body.keys().next().map(String::as_str).unwrap_or("");
        let result = match name {
            "hello" | "isMaster" | "ismaster" => Ok(hello(name, connection_id)),
            "ping" => Ok(ok(Document::new())),
            "buildInfo" | "buildinfo" => Ok(ok(doc! {
                "version": SERVER_VERSION,
                "gitVersion": "mongo-wire",
                "versionArray": [7, 0, 0, 0],
                "bits": 64,
                "debug": false,
                "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
                "storageEngines": ["mongo-wire"],
            })),
            "endSessions" => Ok(ok(Document::new())),
            "find" => self.find(db, body),
            "getMore" => self.get_more(db, body),
            "killCursors" => self.kill_cursors(body),
            "insert" => self.insert(db, body),
            "update" => self.update(db, body),
            "delete" => self.delete(db, body),
            "aggregate" => self.aggregate(db, body),
            "count" => self.count(db, body),
            "createIndexes" => self.create_indexes(db, body),
            "listIndexes" => self.list_indexes(db, body),
            "listCollections" => self.list_collections(db, body),
            "listDatabases" => self.list_databases(body),
            "create" => self.create(db, body),
            "drop" => self.drop_collection(db, body),
            "dropDatabase" => self.drop_database(db),
            other => Err(CmdError::new(
                59,
                "CommandNotFound",
                format!("no such command: '{other}' (mongo-wire is a test double)"),
            )),
        };
        result.unwrap_or_else(|e| e.reply())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        // A poisoned lock only means another command panicked mid-way; the store itself
        // stays structurally valid, so keep serving.
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|p| p.into_inner())
    }

    fn cursors(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Cursor>> {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `{cursor: {firstBatch, id, ns}}`, keeping the rest for `getMore`.
    fn cursor_reply(
        &self,
        ns: String,
        docs: Vec<Document>,
        batch_size: Option<i64>,
        single_batch: bool,
    ) -> Document {
        let mut docs: VecDeque<Document> = docs.into();
        // batchSize 0 opens a cursor and returns nothing yet.
        let limit = match batch_size {
            Some(n) => usize::try_from(n).unwrap_or(0),
            None => DEFAULT_BATCH,
        };
        let first = take_batch(&mut docs, limit);
        let id = if docs.is_empty() || single_batch {
            0
        } else {
            let id = self.next_cursor.fetch_add(1, Ordering::Relaxed);
            let mut cursors = self.cursors();
            if cursors.len() >= MAX_OPEN_CURSORS {
                if let Some(oldest) = cursors.keys().min().copied() {
                    cursors.remove(&oldest);
                }
            }
            cursors.insert(
                id,
                Cursor {
                    ns: ns.clone(),
                    docs,
                },
            );
            id
        };
        ok(doc! { "cursor": { "firstBatch": first, "id": id, "ns": ns } })
    }

    fn find(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "find")?;
        reject_unsupported(body)?;
        let filter = opt_doc(body, "filter")?.cloned().unwrap_or_default();
        let sort = match opt_doc(body, "sort")? {
            Some(s) => query::parse_sort(s)?,
            None => Vec::new(),
        };
        let projection = opt_doc(body, "projection")?
            .filter(|p| !p.is_empty())
            .map(Projection::parse)
            .transpose()?;
        let skip = opt_int(body, "skip")?.unwrap_or(0);
        let limit = opt_int(body, "limit")?.unwrap_or(0);
        if skip < 0 {
            return Err(CmdError::bad_value("skip must be non-negative"));
        }
        let mut single_batch = opt_bool(body, "singleBatch");
        // Legacy negative limit: one batch of |limit| documents.
        if limit < 0 {
            single_batch = true;
        }
        let limit = limit.unsigned_abs() as usize;
        let skip = skip as usize;
        let batch_size = opt_int(body, "batchSize")?;
        if batch_size.is_some_and(|b| b < 0) {
            return Err(CmdError::bad_value("batchSize must be non-negative"));
        }

        let mut docs = Vec::new();
        {
            let store = self.read();
            if let Some(c) = store.collection(db, coll) {
                // Without a sort, stop scanning once skip + limit documents matched.
                let stop = if sort.is_empty() && limit > 0 {
                    skip.saturating_add(limit)
                } else {
                    usize::MAX
                };
                c.scan(&filter, |_, d| {
                    docs.push(d.clone());
                    docs.len() < stop
                })?;
            }
        }
        query::sort_docs(&mut docs, &sort);
        let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
        if limit > 0 {
            docs.truncate(limit);
        }
        if let Some(p) = &projection {
            docs = docs.iter().map(|d| p.apply(d)).collect();
        }
        Ok(self.cursor_reply(format!("{db}.{coll}"), docs, batch_size, single_batch))
    }
}

fn hello(name: &str, connection_id: i64) -> Document {
    let primary_field = if name == "hello" {
        "isWritablePrimary"
    } else {
        "ismaster"
    };
    let mut d = Document::new();
    d.insert("helloOk", true);
    d.insert(primary_field, true);
    // No `topologyVersion`: we do not offer streaming (awaitable) hello.
    d.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE as i32);
    d.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE as i32);
    d.insert("maxWriteBatchSize", 100_000i32);
    d.insert("localTime", bson::DateTime::now());
    d.insert("logicalSessionTimeoutMinutes", 30i32);
    d.insert("connectionId", connection_id);
    d.insert("minWireVersion", 0i32);
    d.insert("maxWireVersion", MAX_WIRE_VERSION);
    d.insert("readOnly", false);
    ok(d)
}

pub(crate) fn new_id() -> Bson {
    Bson::ObjectId(ObjectId::new())
}

/// Options that would change results and that this double does not implement: an error
/// rather than a silently wrong answer.
fn reject_unsupported(body: &Document) -> QResult<()> {
    for key in ["collation", "let", "min", "max", "tailable", "awaitData"] {
        if body
            .get(key)
            .is_some_and(|v| !matches!(v, Bson::Null | Bson::Boolean(false)))
        {
            return Err(CmdError::bad_value(format!(
                "option '{key}' is not supported by mongo-wire"
            )));
        }
    }
    Ok(())
}

impl Engine {
    fn get_more(&self, db: &str, body: &Document) -> QResult<Document> {
        let id = match body.get("getMore") {
            Some(Bson::Int64(i)) => *i,
            _ => return Err(CmdError::type_mismatch("getMore cursor id must be a long")),
        };
        let coll = match body.get("collection") {
            Some(Bson::String(s)) => s.as_str(),
            _ => return Err(CmdError::type_mismatch("'collection' must be a string")),
        };
        let batch = opt_int(body, "batchSize")?
            .filter(|b| *b > 0)
            .map(|b| b as usize)
            .unwrap_or(usize::MAX);
        let mut cursors = self.cursors();
        let Some(cursor) = cursors.get_mut(&id) else {
            return Err(CmdError::new(
                43,
                "CursorNotFound",
                format!("cursor id {id} not found"),
            ));
        };
        if cursor.ns != format!("{db}.{coll}") {
            return Err(CmdError::new(
                13,
                "Unauthorized",
                format!("cursor {id} belongs to {}", cursor.ns),
            ));
        }
        let next = take_batch(&mut cursor.docs, batch);
        let ns = cursor.ns.clone();
        let out_id = if cursor.docs.is_empty() {
            cursors.remove(&id);
            0
        } else {
            id
        };
        Ok(ok(
            doc! { "cursor": { "nextBatch": next, "id": out_id, "ns": ns } },
        ))
    }

    fn kill_cursors(&self, body: &Document) -> QResult<Document> {
        let ids = match body.get("cursors") {
            Some(Bson::Array(a)) => a.clone(),
            _ => return Err(CmdError::failed_to_parse("'cursors' must be an array")),
        };
        let mut killed = Vec::new();
        let mut not_found = Vec::new();
        let mut cursors = self.cursors();
        for id in ids {
            let key = as_i64(&id).unwrap_or(0);
            if cursors.remove(&key).is_some() {
                killed.push(id);
            } else {
                not_found.push(id);
            }
        }
        Ok(ok(doc! {
            "cursorsKilled": killed,
            "cursorsNotFound": not_found,
            "cursorsAlive": [],
            "cursorsUnknown": [],
        }))
    }

    fn insert(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "insert")?;
        let docs = doc_array(body, "documents")?;
        let ordered = body.get_bool("ordered").unwrap_or(true);
        let ns = format!("{db}.{coll}");
        let mut n = 0i32;
        let mut errors = Vec::new();
        let mut store = self.write();
        let c = store.collection_mut(db, coll);
        for (i, d) in docs.into_iter().enumerate() {
            let mut d = d.clone();
            if !d.contains_key("_id") {
                let mut with_id = doc! { "_id": new_id() };
                with_id.extend(d);
                d = with_id;
            }
            match c.insert(&ns, d) {
                Ok(()) => n += 1,
                Err(e) => {
                    errors.push(e.write_error(i));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut reply = doc! { "n": n };
        if !errors.is_empty() {
            reply.insert("writeErrors", errors);
        }
        Ok(ok(reply))
    }

    fn update(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "update")?;
        let updates = doc_array(body, "updates")?;
        let ordered = body.get_bool("ordered").unwrap_or(true);
        let ns = format!("{db}.{coll}");
        let (mut n, mut modified) = (0i32, 0i32);
        let mut upserted = Vec::new();
        let mut errors = Vec::new();
        let mut store = self.write();
        let c = store.collection_mut(db, coll);
        for (i, spec) in updates.into_iter().enumerate() {
            let result = (|| -> QResult<()> {
                let q = opt_doc(spec, "q")?.cloned().unwrap_or_default();
                let u = match spec.get("u") {
                    Some(Bson::Document(u)) => u,
                    Some(Bson::Array(_)) => {
                        return Err(CmdError::failed_to_parse(
                            "pipeline updates are not supported by mongo-wire",
                        ))
                    }
                    _ => return Err(CmdError::failed_to_parse("'u' must be an object")),
                };
                let multi = opt_bool(spec, "multi");
                let upsert = opt_bool(spec, "upsert");
                let mut targets = Vec::new();
                c.scan(&q, |seq, _| {
                    targets.push(seq);
                    multi
                })?;
                if targets.is_empty() {
                    if upsert {
                        let mut d = update::upsert_seed(&q);
                        update::apply_update(&mut d, u, true)?;
                        let id = d.get("_id").cloned().unwrap_or_else(new_id);
                        // `_id` first, as MongoDB stores it.
                        let mut with_id = doc! { "_id": id.clone() };
                        d.remove("_id");
                        with_id.extend(d);
                        c.insert(&ns, with_id)?;
                        n += 1;
                        upserted.push(Bson::Document(doc! { "index": i as i32, "_id": id }));
                    }
                    return Ok(());
                }
                for seq in targets {
                    let Some(old) = c.get(seq) else { continue };
                    let mut new = old.clone();
                    update::apply_update(&mut new, u, false)?;
                    n += 1;
                    if &new != old {
                        c.replace(&ns, seq, new)?;
                        modified += 1;
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                errors.push(e.write_error(i));
                if ordered {
                    break;
                }
            }
        }
        let mut reply = doc! { "n": n, "nModified": modified };
        if !upserted.is_empty() {
            reply.insert("upserted", upserted);
        }
        if !errors.is_empty() {
            reply.insert("writeErrors", errors);
        }
        Ok(ok(reply))
    }

    fn delete(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "delete")?;
        let deletes = doc_array(body, "deletes")?;
        let ordered = body.get_bool("ordered").unwrap_or(true);
        let mut n = 0i32;
        let mut errors = Vec::new();
        let mut store = self.write();
        let c = store.collection_mut(db, coll);
        for (i, spec) in deletes.into_iter().enumerate() {
            let result = (|| -> QResult<()> {
                let q = opt_doc(spec, "q")?.cloned().unwrap_or_default();
                let all = opt_int(spec, "limit")?.unwrap_or(0) == 0;
                let mut targets = Vec::new();
                c.scan(&q, |seq, _| {
                    targets.push(seq);
                    all
                })?;
                for seq in targets {
                    c.remove(seq);
                    n += 1;
                }
                Ok(())
            })();
            if let Err(e) = result {
                errors.push(e.write_error(i));
                if ordered {
                    break;
                }
            }
        }
        let mut reply = doc! { "n": n };
        if !errors.is_empty() {
            reply.insert("writeErrors", errors);
        }
        Ok(ok(reply))
    }

    fn count(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "count")?;
        let filter = opt_doc(body, "query")?.cloned().unwrap_or_default();
        let skip = opt_int(body, "skip")?.unwrap_or(0).max(0) as usize;
        let limit = opt_int(body, "limit")?.unwrap_or(0).unsigned_abs() as usize;
        let store = self.read();
        let mut n = match store.collection(db, coll) {
            None => 0,
            Some(c) if filter.is_empty() => c.len(),
            Some(c) => {
                let mut n = 0usize;
                c.scan(&filter, |_, _| {
                    n += 1;
                    true
                })?;
                n
            }
        };
        n = n.saturating_sub(skip);
        if limit > 0 {
            n = n.min(limit);
        }
        Ok(ok(doc! { "n": n as i64 }))
    }

    fn aggregate(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = match body.get("aggregate") {
            Some(Bson::String(s)) if !s.is_empty() => s.as_str(),
            _ => {
                return Err(CmdError::new(
                    73,
                    "InvalidNamespace",
                    "mongo-wire supports only collection aggregates",
                ))
            }
        };
        reject_unsupported(body)?;
        let pipeline = doc_array(body, "pipeline")?;
        let cursor_opts = match body.get("cursor") {
            Some(Bson::Document(c)) => c,
            _ => return Err(CmdError::failed_to_parse(
                "The 'cursor' option is required, except for aggregate with the explain argument",
            )),
        };
        let batch_size = opt_int(cursor_opts, "batchSize")?;
        let mut pipeline = Pipeline::parse(&pipeline)?;
        // The leading $match goes to the store, which uses the indexes.
        let everything = Document::new();
        let filter = pipeline.take_leading_match().unwrap_or(&everything);
        let mut docs = Vec::new();
        if let Some(c) = self.read().collection(db, coll) {
            c.scan(filter, |_, d| {
                docs.push(d.clone());
                true
            })?;
        }
        let docs = pipeline.run(docs)?;
        Ok(self.cursor_reply(format!("{db}.{coll}"), docs, batch_size, false))
    }

    fn create_indexes(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "createIndexes")?;
        let specs = doc_array(body, "indexes")?;
        let ns = format!("{db}.{coll}");
        let mut store = self.write();
        let created = store.collection(db, coll).is_none();
        let c = store.collection_mut(db, coll);
        let before = c.indexes.len() as i32 + 1;
        for spec in specs {
            let key = match spec.get("key") {
                Some(Bson::Document(k)) if !k.is_empty() => k.clone(),
                _ => {
                    return Err(CmdError::failed_to_parse(
                        "index 'key' must be a non-empty object",
                    ))
                }
            };
            let name = match spec.get("name") {
                Some(Bson::String(n)) => n.clone(),
                _ => key
                    .iter()
                    .map(|(k, v)| format!("{k}_{v}"))
                    .collect::<Vec<_>>()
                    .join("_"),
            };
            c.create_index(&ns, name, key, opt_bool(spec, "unique"))?;
        }
        let after = c.indexes.len() as i32 + 1;
        Ok(ok(doc! {
            "numIndexesBefore": before,
            "numIndexesAfter": after,
            "createdCollectionAutomatically": created,
        }))
    }

    fn list_indexes(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "listIndexes")?;
        let store = self.read();
        let c = store.collection(db, coll).ok_or_else(|| {
            CmdError::new(
                26,
                "NamespaceNotFound",
                format!("ns does not exist: {db}.{coll}"),
            )
        })?;
        let mut list = vec![doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }];
        for idx in &c.indexes {
            let mut d = doc! { "v": 2, "key": idx.key.clone(), "name": idx.name.clone() };
            if idx.unique {
                d.insert("unique", true);
            }
            list.push(d);
        }
        drop(store);
        Ok(self.cursor_reply(format!("{db}.{coll}"), list, None, false))
    }

    fn list_collections(&self, db: &str, body: &Document) -> QResult<Document> {
        let filter = opt_doc(body, "filter")?.cloned().unwrap_or_default();
        let name_only = opt_bool(body, "nameOnly");
        let store = self.read();
        let mut out = Vec::new();
        if let Some(colls) = store.dbs.get(db) {
            let mut names: Vec<&String> = colls.keys().collect();
            names.sort();
            for name in names {
                let d = if name_only {
                    doc! { "name": name.clone(), "type": "collection" }
                } else {
                    doc! {
                        "name": name.clone(),
                        "type": "collection",
                        "options": {},
                        "info": { "readOnly": false },
                        "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                    }
                };
                if query::matches(&d, &filter)? {
                    out.push(d);
                }
            }
        }
        drop(store);
        Ok(self.cursor_reply(format!("{db}.$cmd.listCollections"), out, None, false))
    }

    fn list_databases(&self, body: &Document) -> QResult<Document> {
        let name_only = opt_bool(body, "nameOnly");
        let store = self.read();
        let mut names: Vec<&String> = store.dbs.keys().collect();
        names.sort();
        let dbs: Vec<Document> = names
            .into_iter()
            .map(|n| {
                if name_only {
                    doc! { "name": n.clone() }
                } else {
                    doc! { "name": n.clone(), "sizeOnDisk": 0i64, "empty": false }
                }
            })
            .collect();
        Ok(ok(doc! { "databases": dbs, "totalSize": 0i64 }))
    }

    fn create(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "create")?;
        let mut store = self.write();
        if store.collection(db, coll).is_some() {
            return Err(CmdError::new(
                48,
                "NamespaceExists",
                format!("Collection {db}.{coll} already exists."),
            ));
        }
        store.collection_mut(db, coll);
        Ok(ok(Document::new()))
    }

    fn drop_collection(&self, db: &str, body: &Document) -> QResult<Document> {
        let coll = coll_name(body, "drop")?;
        let mut store = self.write();
        let removed = store.dbs.get_mut(db).and_then(|d| d.remove(coll));
        // MongoDB 7 answers ok for a collection that does not exist.
        let n = removed.map(|c| c.indexes.len() as i32 + 1).unwrap_or(0);
        Ok(ok(doc! { "nIndexesWas": n, "ns": format!("{db}.{coll}") }))
    }

    fn drop_database(&self, db: &str) -> QResult<Document> {
        self.write().dbs.remove(db);
        Ok(ok(doc! { "dropped": db }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "_id", "a", "a.b", "b", "$gt", "$gte", "$lt", "$in", "$nin", "$ne", "$eq", "$exists",
        "$and", "$or", "$not", "$set", "$inc", "$unset", "$match", "$group", "$sort", "$limit",
        "$skip", "$project", "$count", "$sum", "$avg", "$min", "$max", "$first", "$push", "q", "u",
        "upsert", "multi", "limit",
    ];

    fn value() -> impl Strategy<Value = Bson> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(Bson::Int32),
            (-3i64..3).prop_map(Bson::Int64),
            any::<f64>().prop_map(Bson::Double),
            prop::sample::select(vec!["$a", "$a.b", "$_id", "x", "$$ROOT", "$"])
                .prop_map(|s| Bson::String(s.into())),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                    Bson::Document(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    fn command() -> impl Strategy<Value = Document> {
        let name = prop::sample::select(vec![
            "find",
            "aggregate",
            "update",
            "delete",
            "insert",
            "count",
            "getMore",
            "killCursors",
            "createIndexes",
            "listCollections",
            "drop",
        ]);
        let fields = prop::sample::select(vec![
            "filter",
            "sort",
            "projection",
            "limit",
            "skip",
            "batchSize",
            "pipeline",
            "cursor",
            "updates",
            "deletes",
            "documents",
            "query",
            "indexes",
            "cursors",
            "collection",
        ]);
        (name, prop::collection::vec((fields, value()), 0..5)).prop_map(|(name, fields)| {
            let mut d = doc! { name: "c" };
            for (k, v) in fields {
                d.insert(k, v);
            }
            d
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Any command body, however malformed, gets a reply and never panics the engine.
        #[test]
        fn arbitrary_commands_never_panic(cmds in prop::collection::vec(command(), 1..6)) {
            let engine = Engine::default();
            let seed = doc! {
                "insert": "c",
                "documents": [
                    { "_id": 1, "a": { "b": 2 }, "b": [1, 2] },
                    { "_id": 2i64, "a": 5.5, "b": "x" },
                    { "_id": 3.0, "b": null },
                ],
            };
            engine.run("d", &seed, 1);
            for cmd in cmds {
                let reply = engine.run("d", &cmd, 1);
                prop_assert!(reply.contains_key("ok"));
            }
        }
    }
}
