//! HTTP proxies for `http.fetch`: a plain `http://` request goes to the
//! proxy in absolute form (`GET http://host/path HTTP/1.1`), an `https://`
//! one through a `CONNECT host:port` tunnel. The proxy is named by the
//! request (`proxy.url`); `HTTP_PROXY` and friends are never read.

use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

use crate::bindings::vantage::check::common::NetError;

/// Longest CONNECT response head read from a proxy.
const MAX_HEAD: usize = 16 * 1024;

/// A proxy to send a request through.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// `http://host:port` or `https://host:port`.
    pub url: Url,
    /// Headers for the proxy only (`Proxy-Authorization`).
    pub headers: HeaderMap,
}

impl Proxy {
    /// Parse a request's proxy URL and headers.
    pub fn parse(url: &str, headers: HeaderMap) -> Result<Proxy, NetError> {
        let url = Url::parse(url)
            .map_err(|e| NetError::InvalidRequest(format!("invalid proxy URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NetError::InvalidRequest(format!(
                "unsupported proxy scheme `{}` in {url}: use http:// or https://",
                url.scheme()
            )));
        }
        if url.host_str().is_none() {
            return Err(NetError::InvalidRequest(format!(
                "no host in proxy URL {url}"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(NetError::InvalidRequest(
                "credentials in the proxy URL are not supported: send a Proxy-Authorization header in proxy.headers"
                    .into(),
            ));
        }
        Ok(Proxy { url, headers })
    }

    /// The proxy as named in messages: `http://host:port`.
    pub fn name(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port_or_known_default() {
            Some(port) => format!("{}://{host}:{port}", self.url.scheme()),
            None => format!("{}://{host}", self.url.scheme()),
        }
    }

    /// Say that an error came from (or concerns) the proxy.
    pub fn blame(&self, e: NetError) -> NetError {
        let name = self.name();
        match e {
            NetError::Denied(m) => NetError::Denied(format!("proxy {name}: {m}")),
            NetError::Dns(m) => NetError::Dns(format!("proxy {name}: {m}")),
            NetError::Connect(m) => NetError::Connect(format!("proxy {name}: {m}")),
            NetError::Tls(m) => NetError::Tls(format!("proxy {name}: {m}")),
            other => other,
        }
    }
}

/// Open a tunnel to `authority` (`host:port`) through the proxy connection
/// `stream`: send `CONNECT` with the proxy's headers and read the answer's
/// head (byte by byte, so nothing of the tunnel is consumed). A status
/// other than 2xx fails with `connect`, naming the proxy and its answer.
pub async fn connect_tunnel<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    authority: &str,
) -> Result<(), NetError> {
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in &proxy.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let io = |e: std::io::Error| {
        NetError::Connect(format!("proxy {}: CONNECT {authority}: {e}", proxy.name()))
    };
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\n") {
        if got.len() >= MAX_HEAD {
            return Err(NetError::Protocol(format!(
                "proxy {}: CONNECT answer head longer than {MAX_HEAD} bytes",
                proxy.name()
            )));
        }
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await.map_err(io)? == 0 {
            return Err(NetError::Connect(format!(
                "proxy {} closed the connection in answer to CONNECT {authority}",
                proxy.name()
            )));
        }
        got.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&got);
    let status_line = text.lines().next().unwrap_or_default().trim();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) if status_line.starts_with("HTTP/1.") => Ok(()),
        Some(_) => Err(NetError::Connect(format!(
            "proxy {} refused CONNECT {authority}: {status_line}",
            proxy.name()
        ))),
        None => Err(NetError::Protocol(format!(
            "proxy {}: malformed answer to CONNECT {authority}: {status_line:?}",
            proxy.name()
        ))),
    }
}
