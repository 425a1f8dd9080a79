//! A minimal HTTP/1.1 keep-alive client over one TCP connection: one request in flight,
//! buffers reused across requests, no allocation per request once warm. It speaks exactly
//! what the bench needs (JSON bodies with Content-Length) and fails loudly on anything else.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One keep-alive connection to a server.
pub struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` that belong to the previous response.
    consumed: usize,
    /// The server said `Connection: close`: reconnect before the next request.
    closing: bool,
}

/// A response whose body borrows the connection's buffer.
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            addr,
            out: Vec::with_capacity(1024),
            buf: Vec::with_capacity(8192),
            consumed: 0,
            closing: false,
        })
    }

    /// Sends one request and reads its whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response<'_>> {
        self.request_keyed(method, path, auth, body, None).await
    }

    /// [`Conn::request`] with an `Idempotency-Key` header when `key` is given.
    pub async fn request_keyed(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&[u8]>,
        key: Option<&str>,
    ) -> Result<Response<'_>> {
        if self.closing {
            *self = Conn::connect(self.addr).await?;
        }
        self.buf.drain(..self.consumed);
        self.consumed = 0;

        self.out.clear();
        write!(
            self.out,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.addr
        )?;
        if let Some(auth) = auth {
            write!(self.out, "Authorization: {auth}\r\n")?;
        }
        if let Some(key) = key {
            write!(self.out, "Idempotency-Key: {key}\r\n")?;
        }
        if let Some(body) = body {
            write!(
                self.out,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            self.out.extend_from_slice(body);
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
        self.stream
            .write_all(&self.out)
            .await
            .context("writing request")?;

        let (status, head_len, body_len) = loop {
            if let Some(parsed) = self.parse_head()? {
                break parsed;
            }
            self.fill().await?;
        };
        let end = head_len + body_len;
        while self.buf.len() < end {
            self.fill().await?;
        }
        self.consumed = end;
        let body = self.buf.get(head_len..end).context("response body range")?;
        Ok(Response { status, body })
    }

    /// Parses the status line and headers if they are complete:
    /// (status, header length, body length).
    fn parse_head(&mut self) -> Result<Option<(u16, usize, usize)>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(&self.buf).context("malformed HTTP response")? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let status = resp.code.context("no status code")?;
        let mut body_len = None;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value).context("content-length")?;
                body_len = Some(v.trim().parse::<usize>().context("content-length")?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked responses are not supported by the bench client (status {status})");
            } else if h.name.eq_ignore_ascii_case("connection")
                && h.value.eq_ignore_ascii_case(b"close")
            {
                self.closing = true;
            }
        }
        let body_len = match body_len {
            Some(n) => n,
            None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
            None => bail!("response without Content-Length (status {status})"),
        };
        Ok(Some((status, head_len, body_len)))
    }

    async fn fill(&mut self) -> Result<()> {
        self.buf.reserve(8192);
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .context("reading response")?;
        if n == 0 {
            bail!("server closed the connection");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers two requests on one connection, the second split across writes.
    #[tokio::test]
    async fn keep_alive_and_split_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n{\"a\":1}")
                .await
                .unwrap();
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-le")
                .await
                .unwrap();
            s.flush().await.unwrap();
            tokio::task::yield_now().await;
            s.write_all(b"ngth: 2\r\n\r\nno").await.unwrap();
            req
        });
        let mut c = Conn::connect(addr).await.unwrap();
        let r = c
            .request("POST", "/x", Some("Bearer t"), Some(b"{}"))
            .await
            .unwrap();
        assert_eq!((r.status, r.body), (201, &b"{\"a\":1}"[..]));
        let r = c.request("GET", "/y", None, None).await.unwrap();
        assert_eq!((r.status, r.body), (404, &b"no"[..]));
        let req = server.await.unwrap();
        assert!(req.starts_with("POST /x HTTP/1.1\r\n"));
        assert!(req.contains("Authorization: Bearer t\r\n"));
        assert!(req.ends_with("Content-Length: 2\r\n\r\n{}"));
    }
}
