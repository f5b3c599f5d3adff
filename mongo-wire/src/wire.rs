//! The wire codec: `read_frame` cuts one length-prefixed message off a byte stream,
//! [`parse_message`] decodes it (OP_MSG with its kind-0 body and kind-1 document sequences,
//! or the legacy OP_QUERY handshake) into a command document, and `encode_reply` frames the
//! answer (OP_MSG, or OP_REPLY for OP_QUERY) with `responseTo` set to the request's id.
//!
//! Apart from `read_frame` everything here is a pure function over bytes, property-tested
//! against arbitrary input: no input may panic it. An error closes the offending connection
//! only. [`encode_op_msg`] is the client side, for tests.

use bson::{Bson, Document, RawDocument};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest message we accept, as advertised in `hello` (`maxMessageSizeBytes`).
pub(crate) const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// Largest BSON document, as advertised in `hello` (`maxBsonObjectSize`).
pub(crate) const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;
/// Largest document accepted inside a request, as in MongoDB (`BSONObjMaxInternalSize`): a
/// command or update statement wraps a user document of up to `MAX_BSON_OBJECT_SIZE`, so it
/// may be a little larger than that.
pub(crate) const MAX_BSON_INTERNAL_SIZE: usize = MAX_BSON_OBJECT_SIZE + 16 * 1024;
/// Nesting limit checked before a document is decoded, so hostile nesting cannot exhaust the
/// stack of the (recursive) decoder. MongoDB's own limit is of the same order.
pub(crate) const MAX_BSON_DEPTH: usize = 100;

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_MSG: i32 = 2013;

const HEADER_LEN: usize = 16;
/// OP_MSG flag: the message ends with a CRC-32C.
pub const FLAG_CHECKSUM_PRESENT: u32 = 1;
/// OP_MSG flag: the sender sends another message without waiting for a reply (in a request:
/// an unacknowledged write, which gets no reply).
pub const FLAG_MORE_TO_COME: u32 = 1 << 1;
/// OP_MSG flag: the client would accept a stream of replies (exhaust); this server never
/// streams, so it answers once, as if the bit were clear.
pub const FLAG_EXHAUST_ALLOWED: u32 = 1 << 16;
/// Bits 0-15 are "required": a receiver must reject unknown ones. Optional bits (16+, e.g.
/// `exhaustAllowed`) are ignored: we never stream replies.
const REQUIRED_BITS: u32 = 0xffff;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    TooShort,
    BadLength(i64),
    UnsupportedOpCode(i32),
    UnknownRequiredFlags(u32),
    Malformed(&'static str),
    BadBson(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::TooShort => write!(f, "message shorter than its header"),
            WireError::BadLength(n) => write!(f, "bad message length {n}"),
            WireError::UnsupportedOpCode(op) => write!(f, "unsupported opcode {op}"),
            WireError::UnknownRequiredFlags(b) => write!(f, "unknown required flag bits {b:#x}"),
            WireError::Malformed(what) => write!(f, "malformed message: {what}"),
            WireError::BadBson(e) => write!(f, "invalid BSON: {e}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Which framing the reply must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    OpMsg,
    OpQuery,
}

/// One decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub request_id: i32,
    pub framing: Framing,
    /// The command: the kind-0 body with each kind-1 document sequence merged in as an array
    /// field named by the sequence identifier (as the server does).
    pub body: Document,
    /// Database the command runs against (`$db`, or the OP_QUERY namespace prefix).
    pub db: String,
    /// The client set `moreToCome`: it wants no reply (unacknowledged write).
    pub more_to_come: bool,
}

impl Request {
    /// The command name: the first key of the body.
    pub fn command_name(&self) -> &str {
        self.body.keys().next().map(String::as_str).unwrap_or("")
    }
}

/// Reads one whole message (header included) from `r`. The length prefix is checked before
/// anything is allocated; the rest is read however the bytes arrive (one message split over
/// many reads, or many messages in one read: `r` keeps what follows).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix).await?;
    let len = check_length(prefix, MAX_MESSAGE_SIZE)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut buf = vec![0u8; len];
    buf[..4].copy_from_slice(&prefix);
    r.read_exact(&mut buf[4..]).await?;
    Ok(buf)
}

/// Validates the total length declared in a 4-byte little-endian prefix.
pub(crate) fn check_length(prefix: [u8; 4], max: usize) -> Result<usize, WireError> {
    let len = i32::from_le_bytes(prefix);
    if len < HEADER_LEN as i32 || len as usize > max {
        return Err(WireError::BadLength(len as i64));
    }
    Ok(len as usize)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError::Malformed(
                "field runs past the end of the message",
            ))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(self.i32()? as u32)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn cstring(&mut self) -> Result<&'a str, WireError> {
        let rest = &self.buf[self.pos..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(WireError::Malformed("unterminated cstring"))?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| WireError::Malformed("cstring is not UTF-8"))?;
        self.pos += nul + 1;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn document(&mut self) -> Result<Document, WireError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < 5 {
            return Err(WireError::Malformed("document truncated"));
        }
        let len = i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len < 5 || len as usize > rest.len() || len as usize > MAX_BSON_INTERNAL_SIZE {
            return Err(WireError::Malformed("bad document length"));
        }
        let bytes = self.take(len as usize)?;
        decode_document(bytes)
    }
}

/// Decodes one BSON document after checking its structure and depth without recursion.
pub(crate) fn decode_document(bytes: &[u8]) -> Result<Document, WireError> {
    let raw = RawDocument::from_bytes(bytes).map_err(|e| WireError::BadBson(e.to_string()))?;
    check_depth(raw)?;
    Document::try_from(raw).map_err(|e| WireError::BadBson(e.to_string()))
}

fn check_depth(root: &RawDocument) -> Result<(), WireError> {
    // Iterative walk: every element is visited (which validates it) and nested documents and
    // arrays are pushed with their depth.
    let mut stack: Vec<(&RawDocument, usize)> = vec![(root, 1)];
    while let Some((doc, depth)) = stack.pop() {
        if depth > MAX_BSON_DEPTH {
            return Err(WireError::BadBson("document nested too deeply".into()));
        }
        for elem in doc.iter() {
            let (_, value) = elem.map_err(|e| WireError::BadBson(e.to_string()))?;
            match value {
                bson::RawBsonRef::Document(d) => stack.push((d, depth + 1)),
                bson::RawBsonRef::Array(a) => {
                    let d = RawDocument::from_bytes(a.as_bytes())
                        .map_err(|e| WireError::BadBson(e.to_string()))?;
                    stack.push((d, depth + 1))
                }
                bson::RawBsonRef::JavaScriptCodeWithScope(c) => stack.push((c.scope, depth + 1)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Parses one complete message (header included).
pub fn parse_message(msg: &[u8]) -> Result<Request, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::TooShort);
    }
    let mut r = Reader { buf: msg, pos: 0 };
    let len = r.i32()?;
    if len as i64 != msg.len() as i64 {
        return Err(WireError::BadLength(len as i64));
    }
    let request_id = r.i32()?;
    let _response_to = r.i32()?;
    let op_code = r.i32()?;
    match op_code {
        OP_MSG => parse_op_msg(r, request_id),
        OP_QUERY => parse_op_query(r, request_id),
        other => Err(WireError::UnsupportedOpCode(other)),
    }
}

fn parse_op_msg(mut r: Reader<'_>, request_id: i32) -> Result<Request, WireError> {
    let flags = r.u32()?;
    let unknown = flags & REQUIRED_BITS & !(FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME);
    if unknown != 0 {
        return Err(WireError::UnknownRequiredFlags(unknown));
    }
    // The CRC-32C is tolerated, not verified: loopback TCP already guarantees integrity.
    let end = if flags & FLAG_CHECKSUM_PRESENT != 0 {
        r.buf
            .len()
            .checked_sub(4)
            .filter(|&e| e >= r.pos)
            .ok_or(WireError::Malformed("checksum flag without checksum"))?
    } else {
        r.buf.len()
    };
    let mut sections = Reader {
        buf: &r.buf[..end],
        pos: r.pos,
    };
    let mut body: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while sections.remaining() > 0 {
        match sections.u8()? {
            0 => {
                if body.is_some() {
                    return Err(WireError::Malformed("more than one body section"));
                }
                body = Some(sections.document()?);
            }
            1 => {
                let size = sections.i32()?;
                if size < 5 {
                    return Err(WireError::Malformed("bad document sequence size"));
                }
                let payload = sections.take(size as usize - 4)?;
                let mut seq = Reader {
                    buf: payload,
                    pos: 0,
                };
                let ident = seq.cstring()?.to_string();
                let mut docs = Vec::new();
                while seq.remaining() > 0 {
                    docs.push(Bson::Document(seq.document()?));
                }
                sequences.push((ident, docs));
            }
            _ => return Err(WireError::Malformed("unknown section kind")),
        }
    }
    let mut body = body.ok_or(WireError::Malformed("no body section"))?;
    if body.is_empty() {
        return Err(WireError::Malformed("empty command"));
    }
    for (ident, docs) in sequences {
        if body.contains_key(&ident) {
            return Err(WireError::Malformed(
                "document sequence duplicates a body field",
            ));
        }
        body.insert(ident, Bson::Array(docs));
    }
    let db = match body.get("$db") {
        Some(Bson::String(db)) => db.clone(),
        _ => return Err(WireError::Malformed("OP_MSG command without $db")),
    };
    Ok(Request {
        request_id,
        framing: Framing::OpMsg,
        body,
        db,
        more_to_come: flags & FLAG_MORE_TO_COME != 0,
    })
}

fn parse_op_query(mut r: Reader<'_>, request_id: i32) -> Result<Request, WireError> {
    let _flags = r.i32()?;
    let ns = r.cstring()?;
    let _skip = r.i32()?;
    let _n_return = r.i32()?;
    let mut query = r.document()?;
    if r.remaining() > 0 {
        let _fields = r.document()?;
    }
    if r.remaining() != 0 {
        return Err(WireError::Malformed("trailing bytes after OP_QUERY"));
    }
    // Only commands are supported through OP_QUERY (the legacy handshake), as in MongoDB 6+.
    let db = ns
        .strip_suffix(".$cmd")
        .ok_or(WireError::Malformed(
            "OP_QUERY is only supported for commands",
        ))?
        .to_string();
    if let Some(Bson::Document(inner)) = query.get("$query") {
        query = inner.clone();
    }
    if query.is_empty() {
        return Err(WireError::Malformed("empty command"));
    }
    Ok(Request {
        request_id,
        framing: Framing::OpQuery,
        body: query,
        db,
        more_to_come: false,
    })
}

/// Encodes a reply to `request_id` in the framing the request used.
pub(crate) fn encode_reply(
    framing: Framing,
    request_id: i32,
    response_to: i32,
    reply: &Document,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    match framing {
        Framing::OpMsg => {
            out.extend_from_slice(&OP_MSG.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.push(0);
        }
        Framing::OpQuery => {
            out.extend_from_slice(&OP_REPLY.to_le_bytes());
            out.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
            out.extend_from_slice(&0i64.to_le_bytes()); // cursorID
            out.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
            out.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
        }
    }
    // Encoding fails only for a key containing NUL (e.g. a `$count` field named by a string
    // that holds one). Encode aside first, so a failure can never leave half a document in
    // the frame, and answer with an error instead.
    match bson::to_vec(reply) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(e) => {
            let fallback = bson::doc! {
                "ok": 0.0,
                "errmsg": format!("mongo-wire could not encode the reply: {e}"),
                "code": 1,
                "codeName": "InternalError",
            };
            if let Ok(bytes) = bson::to_vec(&fallback) {
                out.extend_from_slice(&bytes);
            }
        }
    }
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// Builds an OP_MSG request: a kind-0 body and kind-1 sequences. Used by tests and fuzzing;
/// a document BSON cannot encode (a key holding NUL, a binary over 16 MiB) is left out.
pub fn encode_op_msg(
    request_id: i32,
    flags: u32,
    body: &Document,
    sequences: &[(&str, Vec<Document>)],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&OP_MSG.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(0);
    let _ = body.to_writer(&mut out);
    for (ident, docs) in sequences {
        out.push(1);
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(ident.as_bytes());
        out.push(0);
        for d in docs {
            let _ = d.to_writer(&mut out);
        }
        let size = (out.len() - start) as i32;
        out[start..start + 4].copy_from_slice(&size.to_le_bytes());
    }
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn op_msg_with_sequence_and_checksum_round_trips() {
        let body = doc! { "insert": "users", "$db": "app" };
        let docs = vec![doc! { "_id": 1 }, doc! { "_id": 2 }];
        let msg = encode_op_msg(7, FLAG_CHECKSUM_PRESENT, &body, &[("documents", docs)]);
        let req = parse_message(&msg).expect("valid message");
        assert_eq!(req.request_id, 7);
        assert_eq!(req.db, "app");
        assert_eq!(req.command_name(), "insert");
        let inserted = req.body.get_array("documents").expect("merged sequence");
        assert_eq!(inserted.len(), 2);
    }

    #[test]
    fn a_reply_that_cannot_be_encoded_becomes_one_whole_error_document() {
        let mut bad = Document::new();
        bad.insert("a\0b", 1);
        let frame = encode_reply(Framing::OpMsg, 3, 9, &doc! { "ok": 1.0, "nested": bad });
        let len = i32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len());
        assert_eq!(
            i32::from_le_bytes([frame[8], frame[9], frame[10], frame[11]]),
            9
        );
        let body = decode_document(&frame[21..]).expect("exactly one document");
        assert_eq!(body.get_f64("ok").ok(), Some(0.0));
    }

    #[test]
    fn request_documents_may_exceed_the_user_limit_by_the_internal_margin() {
        let bin = |n: usize| bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![0; n],
        };
        // {_id, a, b} whose encoding is exactly `total` bytes (one binary is capped at 16 MiB).
        let sized = |total: usize| {
            let overhead =
                bson::to_vec(&doc! { "_id": 1, "a": bin(0), "b": bin(0) }).map_or(0, |v| v.len());
            let half = (total - overhead) / 2;
            let d = doc! { "_id": 1, "a": bin(half), "b": bin(total - overhead - half) };
            assert_eq!(bson::to_vec(&d).map(|v| v.len()).ok(), Some(total));
            d
        };
        let body = doc! { "update": "c", "$db": "d" };
        let fits = encode_op_msg(
            1,
            0,
            &body,
            &[("updates", vec![sized(MAX_BSON_INTERNAL_SIZE)])],
        );
        assert!(parse_message(&fits).is_ok());
        let over = encode_op_msg(
            1,
            0,
            &body,
            &[("updates", vec![sized(MAX_BSON_INTERNAL_SIZE + 1)])],
        );
        assert_eq!(
            parse_message(&over),
            Err(WireError::Malformed("bad document length"))
        );
    }

    #[test]
    fn unknown_required_flag_is_rejected() {
        let msg = encode_op_msg(1, 1 << 5, &doc! { "ping": 1, "$db": "admin" }, &[]);
        assert!(matches!(
            parse_message(&msg),
            Err(WireError::UnknownRequiredFlags(_))
        ));
    }

    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        // Build {a:{a:{...}}} 10_000 deep by hand.
        let depth = 10_000usize;
        let mut bytes = Vec::new();
        for _ in 0..depth {
            bytes.extend_from_slice(&[0; 4]);
            bytes.push(0x03);
            bytes.extend_from_slice(b"a\0");
        }
        bytes.extend_from_slice(&5i32.to_le_bytes());
        bytes.push(0);
        for i in (0..depth).rev() {
            bytes.push(0);
            let start = i * 7;
            let len = (bytes.len() - start) as i32;
            bytes[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        assert!(matches!(
            decode_document(&bytes),
            Err(WireError::BadBson(_))
        ));
    }

    #[test]
    fn op_query_handshake_parses() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&[0; 4]);
        msg.extend_from_slice(&3i32.to_le_bytes());
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(&OP_QUERY.to_le_bytes());
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(b"admin.$cmd\0");
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(&(-1i32).to_le_bytes());
        doc! { "isMaster": 1, "helloOk": true }
            .to_writer(&mut msg)
            .expect("encode");
        let len = msg.len() as i32;
        msg[..4].copy_from_slice(&len.to_le_bytes());
        let req = parse_message(&msg).expect("valid OP_QUERY");
        assert_eq!(req.framing, Framing::OpQuery);
        assert_eq!(req.db, "admin");
        assert_eq!(req.command_name(), "isMaster");
    }
}
