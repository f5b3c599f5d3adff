//! Command failures: [`CmdError`] carries MongoDB's error code and code name from wherever the
//! failure is found (a filter, a unique index, a pipeline stage) to the reply, where it becomes
//! `{ok: 0, errmsg, code, codeName}`. A failed command is an answer, never a closed connection.

use bson::{doc, Document};

/// A command failure, rendered as `{ok: 0, errmsg, code, codeName}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CmdError {
    pub code: i32,
    pub code_name: &'static str,
    pub msg: String,
    /// Extra reply fields (e.g. `keyPattern`/`keyValue` of a duplicate key error).
    pub extra: Option<Box<Document>>,
}

impl CmdError {
    pub(crate) fn new(code: i32, code_name: &'static str, msg: impl Into<String>) -> Self {
        CmdError {
            code,
            code_name,
            msg: msg.into(),
            extra: None,
        }
    }
    pub(crate) fn with_key(mut self, key_pattern: Document, key_value: Document) -> Self {
        self.extra = Some(Box::new(
            doc! { "keyPattern": key_pattern, "keyValue": key_value },
        ));
        self
    }
    pub(crate) fn bad_value(msg: impl Into<String>) -> Self {
        CmdError::new(2, "BadValue", msg)
    }
    pub(crate) fn type_mismatch(msg: impl Into<String>) -> Self {
        CmdError::new(14, "TypeMismatch", msg)
    }
    pub(crate) fn failed_to_parse(msg: impl Into<String>) -> Self {
        CmdError::new(9, "FailedToParse", msg)
    }

    /// The whole reply of a failed command.
    pub(crate) fn reply(&self) -> Document {
        let mut d = doc! {
            "ok": 0.0, "errmsg": self.msg.clone(), "code": self.code, "codeName": self.code_name,
        };
        if let Some(extra) = &self.extra {
            d.extend(extra.as_ref().clone());
        }
        d
    }

    /// One entry of a write command's `writeErrors` array.
    pub(crate) fn write_error(&self, index: usize) -> bson::Bson {
        let mut d = doc! { "index": index as i32, "code": self.code, "errmsg": self.msg.clone() };
        if let Some(extra) = &self.extra {
            d.extend(extra.as_ref().clone());
        }
        bson::Bson::Document(d)
    }
}

pub(crate) type QResult<T> = Result<T, CmdError>;
