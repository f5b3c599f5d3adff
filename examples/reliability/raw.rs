//! Reading HTTP/1.x responses off a raw socket, strictly: what a hostile or slow client sees,
//! with no client library smoothing over a malformed answer.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One response as it came off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the server said it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"close"))
    }
}

/// Why no (further) response could be read.
#[derive(Debug, Clone, PartialEq)]
pub enum NoResponse {
    /// The server closed (or reset) the connection before a response began.
    Closed,
    /// Nothing complete arrived before the deadline.
    Timeout,
    /// Bytes arrived that are not a well-formed HTTP/1.x response; says what is wrong.
    Malformed(String),
}

/// A connection's read side: bytes received and not yet consumed by a parsed response.
pub struct Reader {
    buf: Vec<u8>,
    eof: bool,
}

/// The most a response head may take before it counts as malformed.
const MAX_HEAD: usize = 64 * 1024;
/// The most a response body may take.
const MAX_BODY: usize = 8 * 1024 * 1024;

impl Reader {
    pub fn new() -> Reader {
        Reader {
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Reads more bytes before `deadline`; false on timeout or end of stream.
    async fn fill(&mut self, stream: &mut TcpStream, deadline: Instant) -> Result<(), NoResponse> {
        if self.eof {
            return Err(NoResponse::Closed);
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => Err(NoResponse::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                Err(NoResponse::Closed)
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    /// The next final response (1xx interim responses are skipped). `head_request`: the
    /// request was a HEAD, so the response has no body whatever its headers say.
    pub async fn response(
        &mut self,
        stream: &mut TcpStream,
        deadline: Instant,
        head_request: bool,
    ) -> Result<Response, NoResponse> {
        loop {
            let r = self.one(stream, deadline, head_request).await?;
            if !(100..200).contains(&r.status) {
                return Ok(r);
            }
        }
    }

    async fn one(
        &mut self,
        stream: &mut TcpStream,
        deadline: Instant,
        head_request: bool,
    ) -> Result<Response, NoResponse> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(NoResponse::Malformed("response head over 64 KiB".into()));
            }
            match self.fill(stream, deadline).await {
                Ok(()) => {}
                Err(NoResponse::Closed) if !self.buf.is_empty() => {
                    return Err(NoResponse::Malformed(format!(
                        "connection closed inside a response head: {:?}",
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
                    )))
                }
                Err(e) => return Err(e),
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_end + 4).collect();
        let (status, headers) = parse_head(&head[..head_end]).map_err(NoResponse::Malformed)?;
        let no_body =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        let te = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
        let cl: Vec<&Vec<u8>> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v)
            .collect();
        let body = if no_body {
            Vec::new()
        } else if let Some((_, te)) = te {
            if !cl.is_empty() {
                return Err(NoResponse::Malformed(
                    "both Transfer-Encoding and Content-Length".into(),
                ));
            }
            if !te.eq_ignore_ascii_case(b"chunked") {
                return Err(NoResponse::Malformed(format!(
                    "unexpected Transfer-Encoding {:?}",
                    String::from_utf8_lossy(te)
                )));
            }
            self.chunked(stream, deadline).await?
        } else if let Some(first) = cl.first() {
            if cl.iter().any(|v| v != first) {
                return Err(NoResponse::Malformed("conflicting Content-Length".into()));
            }
            let n: usize = std::str::from_utf8(first)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .filter(|&n| n <= MAX_BODY)
                .ok_or_else(|| {
                    NoResponse::Malformed(format!(
                        "bad Content-Length {:?}",
                        String::from_utf8_lossy(first)
                    ))
                })?;
            self.exactly(stream, deadline, n).await?
        } else {
            // Delimited by the end of the connection.
            loop {
                if self.buf.len() > MAX_BODY {
                    return Err(NoResponse::Malformed(
                        "close-delimited body over 8 MiB".into(),
                    ));
                }
                match self.fill(stream, deadline).await {
                    Ok(()) => {}
                    Err(NoResponse::Closed) => break std::mem::take(&mut self.buf),
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn exactly(
        &mut self,
        stream: &mut TcpStream,
        deadline: Instant,
        n: usize,
    ) -> Result<Vec<u8>, NoResponse> {
        while self.buf.len() < n {
            match self.fill(stream, deadline).await {
                Ok(()) => {}
                Err(NoResponse::Closed) => {
                    return Err(NoResponse::Malformed(format!(
                        "body cut short: {} of {n} bytes",
                        self.buf.len()
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn line(
        &mut self,
        stream: &mut TcpStream,
        deadline: Instant,
    ) -> Result<Vec<u8>, NoResponse> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(NoResponse::Malformed("chunk line over 64 KiB".into()));
            }
            match self.fill(stream, deadline).await {
                Ok(()) => {}
                Err(NoResponse::Closed) => {
                    return Err(NoResponse::Malformed("closed inside a chunked body".into()))
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn chunked(
        &mut self,
        stream: &mut TcpStream,
        deadline: Instant,
    ) -> Result<Vec<u8>, NoResponse> {
        let mut body = Vec::new();
        loop {
            let line = self.line(stream, deadline).await?;
            let size = std::str::from_utf8(&line)
                .ok()
                .map(|s| s.split(';').next().unwrap_or("").trim())
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .filter(|&n| n <= MAX_BODY)
                .ok_or_else(|| {
                    NoResponse::Malformed(format!(
                        "bad chunk size {:?}",
                        String::from_utf8_lossy(&line)
                    ))
                })?;
            if size == 0 {
                // Trailers, then the empty line.
                while !self.line(stream, deadline).await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.exactly(stream, deadline, size).await?);
            if !self.line(stream, deadline).await?.is_empty() {
                return Err(NoResponse::Malformed("chunk not followed by CRLF".into()));
            }
            if body.len() > MAX_BODY {
                return Err(NoResponse::Malformed("chunked body over 8 MiB".into()));
            }
        }
    }

    /// Whether the server closed its side, waiting up to `within` for it.
    pub async fn closed_within(&mut self, stream: &mut TcpStream, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.fill(stream, deadline).await {
                Ok(()) => continue,
                Err(NoResponse::Closed) => return true,
                Err(_) => return false,
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Status line and header fields of a response head (without its final CRLF CRLF).
type Headers = Vec<(String, Vec<u8>)>;

fn parse_head(head: &[u8]) -> Result<(u16, Headers), String> {
    let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = (|| {
        let rest = status_line
            .strip_prefix(b"HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix(b"HTTP/1.0 "))?;
        let code = rest.get(..3)?;
        if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
            return None;
        }
        std::str::from_utf8(code)
            .ok()?
            .parse::<u16>()
            .ok()
            .filter(|c| (100..600).contains(c))
    })()
    .ok_or_else(|| format!("bad status line {:?}", text(status_line)))?;
    let mut headers = Vec::new();
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| format!("header line without a colon: {:?}", text(line)))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(format!("bad header name {:?}", text(name)));
        }
        if value
            .iter()
            .any(|&b| b == b'\r' || b == 0 || (b < 0x20 && b != b'\t'))
        {
            return Err(format!("control byte in header value {:?}", text(value)));
        }
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            value.trim_ascii().to_vec(),
        ));
    }
    Ok((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// What `Reader` makes of `bytes` sent by a server that then closes.
    async fn read(bytes: &'static [u8]) -> Vec<Result<u16, NoResponse>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(bytes).await.unwrap();
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut reader = Reader::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        loop {
            let r = reader.response(&mut stream, deadline, false).await;
            let done = r.is_err();
            out.push(r.map(|r| r.status));
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn framing() {
        use NoResponse::*;
        let ok = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi\
            HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(ok, vec![Ok(200), Ok(404), Err(Closed)]);
        let short = read(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhi").await;
        assert!(matches!(short[..], [Err(Malformed(_))]), "{short:?}");
        let conflict =
            read(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nhi").await;
        assert!(matches!(conflict[..], [Err(Malformed(_))]), "{conflict:?}");
        let chunk = read(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").await;
        assert!(matches!(chunk[..], [Err(Malformed(_))]), "{chunk:?}");
        let head = read(b"HTTP/1.1 200 OK\r\ncontent-len").await;
        assert!(matches!(head[..], [Err(Malformed(_))]), "{head:?}");
        let until_close = read(b"HTTP/1.0 200 OK\r\n\r\nall of it").await;
        assert_eq!(until_close, vec![Ok(200), Err(Closed)]);
    }

    #[test]
    fn heads() {
        let (s, h) = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nx: y z").unwrap();
        assert_eq!(s, 404);
        assert_eq!(h[1].1, b"y z");
        assert!(parse_head(b"HTTP/1.1 4040 No").is_err());
        assert!(parse_head(b"HTTP/2 200 OK").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nbad header").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nb d: x").is_err());
        assert!(parse_head(b"HTTP/1.1 200").is_ok());
    }
}
