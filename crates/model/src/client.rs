//! The HTTP client of the controller's API, used by the agent and the CLI.
//!
//! Built on the hyper stack (HTTP/1.1, pooled keep-alive connections); cheap to clone, and
//! clones share the connection pool. Plain `http://` only for now. Every error answer becomes
//! [`Error::Api`] with the server's [`Problem`].

use std::net::IpAddr;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::problem::Problem;
use crate::types::*;

#[derive(Clone, Debug)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    /// `http://host:port`, no trailing slash.
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for the controller at `base` (e.g. `http://127.0.0.1:7700`), sending `token`
    /// as a bearer token when given.
    pub fn new(base: &str, token: Option<String>) -> Result<Client, Error> {
        let base = base.trim_end_matches('/').to_string();
        let uri: hyper::Uri = base.parse().map_err(|e| Error::Url {
            url: base.clone(),
            reason: format!("{e}"),
        })?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(Error::Url {
                    url: base,
                    reason: "https is not supported yet: use http:// (on a trusted network or through a TLS proxy)".into(),
                });
            }
            _ => {
                return Err(Error::Url {
                    url: base,
                    reason: "use http://host:port".into(),
                });
            }
        }
        if uri.host().is_none() {
            return Err(Error::Url {
                url: base,
                reason: "no host: use http://host:port".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(Client { http, base, token })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>, Error> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| Error::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let resp = self.http.request(req).await.map_err(|e| Error::Transport {
            url: url.clone(),
            reason: transport_reason(&e),
        })?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status();
            let bytes = collect(resp.into_body(), &url).await?;
            return Err(problem_of(status, &bytes));
        }
        Ok(resp)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let resp = self.send(method, path, body).await?;
        let url = format!("{}{path}", self.base);
        let bytes = collect(resp.into_body(), &url).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url,
            reason: e.to_string(),
        })
    }

    fn json<B: Serialize>(body: &B) -> Result<Option<Vec<u8>>, Error> {
        serde_json::to_vec(body)
            .map(Some)
            .map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// `GET path` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.call(Method::POST, path, Self::json(body)?).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.call(Method::PUT, path, Self::json(body)?).await
    }

    /// `DELETE path`; the answer body is ignored.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let resp = self.send(Method::DELETE, path, None).await?;
        let _ = collect(resp.into_body(), path).await?;
        Ok(())
    }

    // --- typed helpers ---------------------------------------------------------------------

    /// One page of a resource list.
    pub async fn list<R: Resource>(
        &self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<R>, Error> {
        self.get(&page_path(&format!("/v1/{}", R::PLURAL), after, limit))
            .await
    }

    /// Every item of a resource list, following `next`.
    pub async fn list_all<R: Resource>(&self) -> Result<Vec<R>, Error> {
        collect_pages(|after| async move { self.list::<R>(after.as_deref(), None).await }).await
    }

    pub async fn read<R: Resource>(&self, name: &str) -> Result<R, Error> {
        self.get(&format!("/v1/{}/{}", R::PLURAL, enc(name))).await
    }

    pub async fn create<R: Resource>(&self, resource: &R) -> Result<R, Error> {
        self.post(&format!("/v1/{}", R::PLURAL), resource).await
    }

    /// Replaces a resource; fails with 409 if `resource.resource_version` is stale.
    pub async fn update<R: Resource>(&self, resource: &R) -> Result<R, Error> {
        self.put(
            &format!("/v1/{}/{}", R::PLURAL, enc(resource.name())),
            resource,
        )
        .await
    }

    /// Deletes a resource; with `resource_version` > 0, only if it is still that version.
    pub async fn remove<R: Resource>(
        &self,
        name: &str,
        resource_version: u64,
    ) -> Result<(), Error> {
        let mut path = format!("/v1/{}/{}", R::PLURAL, enc(name));
        if resource_version > 0 {
            path.push_str(&format!("?resource_version={resource_version}"));
        }
        self.delete(&path).await
    }

    pub async fn site(&self) -> Result<Site, Error> {
        self.get("/v1/site").await
    }

    pub async fn put_site(&self, site: &Site) -> Result<Site, Error> {
        self.put("/v1/site", site).await
    }

    /// Allocates an address in a tenant subnet.
    pub async fn allocate(&self, subnet: &str, req: &AllocateAddress) -> Result<Address, Error> {
        self.post(&format!("/v1/subnets/{}/addresses", enc(subnet)), req)
            .await
    }

    /// Allocates a floating or anycast address from a pool.
    pub async fn allocate_direct(
        &self,
        pool: &str,
        req: &AllocateAddress,
    ) -> Result<Address, Error> {
        self.post(&format!("/v1/pools/{}/addresses", enc(pool)), req)
            .await
    }

    pub async fn address(&self, ip: IpAddr) -> Result<Address, Error> {
        self.get(&format!("/v1/addresses/{ip}")).await
    }

    /// Releases an address; `forget` also frees an address kept for a fixed owner.
    pub async fn release(&self, ip: IpAddr, forget: bool) -> Result<(), Error> {
        let q = if forget { "?forget=true" } else { "" };
        self.delete(&format!("/v1/addresses/{ip}{q}")).await
    }

    pub async fn subnet_addresses(
        &self,
        subnet: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Address>, Error> {
        self.get(&page_path(
            &format!("/v1/subnets/{}/addresses", enc(subnet)),
            after,
            limit,
        ))
        .await
    }

    pub async fn pool_addresses(
        &self,
        pool: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Address>, Error> {
        self.get(&page_path(
            &format!("/v1/pools/{}/addresses", enc(pool)),
            after,
            limit,
        ))
        .await
    }

    pub async fn tokens(
        &self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Token>, Error> {
        self.get(&page_path("/v1/tokens", after, limit)).await
    }

    pub async fn create_token(&self, req: &CreateToken) -> Result<TokenCreated, Error> {
        self.post("/v1/tokens", req).await
    }

    /// Registers the node (idempotent: an existing node is returned unchanged).
    pub async fn register(&self, node: &Node) -> Result<Node, Error> {
        self.post(&format!("/v1/nodes/{}/register", enc(&node.name)), node)
            .await
    }

    pub async fn heartbeat(&self, node: &str, hb: &Heartbeat) -> Result<Node, Error> {
        self.post(&format!("/v1/nodes/{}/heartbeat", enc(node)), hb)
            .await
    }

    pub async fn desired_state(&self, node: &str) -> Result<DesiredStateAt, Error> {
        self.get(&format!("/v1/nodes/{}/desired-state", enc(node)))
            .await
    }

    /// Follows a node's desired state from `from_revision` (0: the current state first).
    /// Resume after a disconnect with the last seen revision + 1.
    pub async fn watch_desired_state(
        &self,
        node: &str,
        from_revision: u64,
    ) -> Result<WatchStream, Error> {
        let path = format!(
            "/v1/nodes/{}/desired-state?watch=true&from_revision={from_revision}",
            enc(node)
        );
        let resp = self.send(Method::GET, &path, None).await?;
        Ok(WatchStream {
            body: resp.into_body(),
            buf: BytesMut::new(),
            url: format!("{}{path}", self.base),
        })
    }

    pub async fn ipam_check(&self, repair: bool) -> Result<IpamCheck, Error> {
        if repair {
            self.post("/v1/ipam/repair", &serde_json::json!({})).await
        } else {
            self.get("/v1/ipam/check").await
        }
    }
}

/// A desired-state watch: one [`WatchEvent`] per line of the response.
#[derive(Debug)]
pub struct WatchStream {
    body: Incoming,
    buf: BytesMut,
    url: String,
}

impl WatchStream {
    /// The next event; `None` when the server ends the stream.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, Error>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = &line[..pos];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(serde_json::from_slice(line).map_err(|e| Error::Decode {
                    url: self.url.clone(),
                    reason: e.to_string(),
                }));
            }
            match self.body.frame().await {
                None => return None,
                Some(Err(e)) => {
                    return Some(Err(Error::Transport {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    }));
                }
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            let n = chunk.len();
                            self.buf.extend_from_slice(chunk);
                            data.advance(n);
                        }
                    }
                }
            }
        }
    }
}

async fn collect(body: Incoming, url: &str) -> Result<Bytes, Error> {
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Error::Transport {
            url: url.to_string(),
            reason: e.to_string(),
        })
}

fn problem_of(status: StatusCode, body: &[u8]) -> Error {
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) => Error::Api(Box::new(p)),
        Err(_) => Error::Api(Box::new(Problem {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("error").into(),
            status: status.as_u16(),
            detail: String::from_utf8_lossy(body).chars().take(200).collect(),
            hint: None,
            field: None,
        })),
    }
}

fn transport_reason(e: &hyper_util::client::legacy::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn page_path(base: &str, after: Option<&str>, limit: Option<usize>) -> String {
    let mut q = Vec::new();
    if let Some(a) = after {
        q.push(format!("after={}", enc(a)));
    }
    if let Some(l) = limit {
        q.push(format!("limit={l}"));
    }
    if q.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

async fn collect_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, Error>>,
{
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after.take()).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Percent-encodes a path segment or query value (names are plain already; this is a guard).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Client::new("http://127.0.0.1:7700/", None).is_ok());
        assert!(matches!(
            Client::new("https://x:1", None),
            Err(Error::Url { .. })
        ));
        assert!(matches!(
            Client::new("127.0.0.1:7700", None),
            Err(Error::Url { .. })
        ));
        assert_eq!(enc("a/b c"), "a%2Fb%20c");
        assert_eq!(
            page_path("/v1/x", Some("n1"), Some(5)),
            "/v1/x?after=n1&limit=5"
        );
    }
}
