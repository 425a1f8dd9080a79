//! The OpenAPI document tells the truth: an outside tool (openapi-spec-validator, from PyPI)
//! accepts it as OpenAPI 3.1; it documents every route the router serves, with every path
//! parameter; every route, driven with a malformed body, a wrong content type, an unknown id and
//! no credentials, answers only statuses the document lists for it; and every error, including
//! those axum makes by itself, is the JSON error the README promises, in plain words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::{Client, TestNode, on_every_backend};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The validator, pinned.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";

/// Methods an operation can have in the document.
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// A directory with openapi-spec-validator in it, for PYTHONPATH; installed there with pip the
/// first time (one folder under the target dir, kept between runs).
fn validator_dir() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let python = Command::new("python3").arg("--version").output();
    assert!(
        python.as_ref().is_ok_and(|o| o.status.success()),
        "python3 is needed to run openapi-spec-validator on the OpenAPI document; install \
         python3 with pip (Debian: apt-get install python3 python3-pip): {python:?}"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(VALIDATOR.replace("==", "-"));
    let done = dir.join(".installed");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--target",
            ])
            .arg(&dir)
            .arg(VALIDATOR)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip could not install {VALIDATOR} into {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, VALIDATOR).unwrap();
    }
    dir
}

/// What openapi-spec-validator says of `doc`: `Ok` with its output, or `Err` with its errors.
fn validate(doc: &Value, name: &str) -> Result<String, String> {
    let dir = validator_dir();
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.openapi.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args([
            "-m",
            "openapi_spec_validator",
            "--schema",
            "3.1",
            "--validation-errors",
            "all",
        ])
        .arg(&file)
        .env("PYTHONPATH", &dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    on_every_backend!(|node| {
        let (status, doc) = node.client().get("/api/v1/openapi.json").await;
        assert_eq!(status, 200);
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1."),
            "{}",
            doc["openapi"]
        );
        let name = format!("served-{}", node.backend());
        if let Err(errors) = validate(&doc, &name) {
            panic!("openapi-spec-validator rejects the document: {errors}");
        }

        // The tool does catch what it was brought in for: a path parameter left undeclared.
        let mut broken = doc.clone();
        broken["paths"]["/api/v1/conversations/{id}"]["get"]["parameters"] = json!([]);
        assert!(
            validate(&broken, &format!("broken-{}", node.backend())).is_err(),
            "the validator accepted a document with an undeclared path parameter"
        );
    });
}

/// The `{name}`s of a path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

/// The paths the router serves, read from its `Debug` form (`path_router: PathRouter { ...,
/// node: Node { paths: {RouteId(3): "/api/v1/me", ...} } }`): the router itself, not a list kept
/// beside it. (Should axum change that form, this finds nothing and the test says so.)
fn served_paths() -> BTreeSet<String> {
    let debug = format!("{:?}", minihost_api::routes());
    let Some(start) = debug.find("node: Node { paths: {") else {
        return BTreeSet::new();
    };
    // `RouteId(7): "/a/{id}", RouteId(2): "/b"}`: entries until the map's closing brace.
    let mut rest = &debug[start + "node: Node { paths: {".len()..];
    let mut paths = BTreeSet::new();
    while let Some(entry) = rest.strip_prefix("RouteId(") {
        let (_, tail) = entry.split_once("): \"").unwrap();
        let (path, tail) = tail.split_once('"').unwrap();
        paths.insert(path.to_owned());
        rest = tail.strip_prefix(", ").unwrap_or(tail);
    }
    assert!(rest.starts_with('}'), "unexpected route table: {rest:.80}");
    paths
}

/// A value for a path parameter that matches its documented format and names nothing.
fn unknown(param: &str) -> &'static str {
    match param {
        "id" => "c_000000000000000000000000",
        "message" => "m_000000000000000000000000",
        "username" => "nobody_here",
        "app" => "no-such-app",
        "version" => "9.9.9",
        "scope" => "storage",
        "app_user_id" => "au_00000000000000000000000000000000",
        "payment" => "po_00000000000000000000",
        "session" => "ses_000000000000000000000000",
        other => panic!("no unknown value for path parameter {other}"),
    }
}

/// `path` with every `{param}` replaced by [`unknown`].
fn concrete(path: &str) -> String {
    path.split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(p) => unknown(p).to_owned(),
                None => s.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Every (path, method) the document has.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((path.clone(), m.to_uppercase()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_route_and_every_path_parameter_is_documented() {
    on_every_backend!(|node| {
        let c = node.client();
        let doc = c.get("/api/v1/openapi.json").await.1;

        // Router → document: every path the router has, with each method it answers. A method
        // no route has (PROBE) is answered 405, whose Allow header lists the methods it has.
        let paths = served_paths();
        assert!(
            paths.len() > 30,
            "read {} paths from the router",
            paths.len()
        );
        let probe = Method::from_bytes(b"PROBE").unwrap();
        let mut served = BTreeSet::new();
        for path in &paths {
            let r = c.raw(probe.clone(), &concrete(path)).send().await.unwrap();
            assert_eq!(r.status(), 405, "PROBE {path}");
            let allow = r.headers()["allow"].to_str().unwrap().to_owned();
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body["error"]["code"], "method_not_allowed",
                "{path}: {body}"
            );
            for m in allow.split(',').map(str::trim).filter(|m| *m != "HEAD") {
                served.insert((path.clone(), m.to_owned()));
            }
        }
        let in_doc = documented(&doc);
        let undocumented: Vec<_> = served.difference(&in_doc).collect();
        assert!(
            undocumented.is_empty(),
            "served but not documented: {undocumented:?}"
        );
        let unserved: Vec<_> = in_doc.difference(&served).collect();
        assert!(
            unserved.is_empty(),
            "documented but not served: {unserved:?}"
        );

        // Every `{param}` is declared, as a required path parameter with a string schema, and
        // nothing else is declared in the path.
        for (path, method) in &in_doc {
            let op = &doc["paths"][path][method.to_lowercase()];
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .inspect(|p| {
                    assert_eq!(p["required"], true, "{method} {path}: {p}");
                    assert_eq!(p["schema"]["type"], "string", "{method} {path}: {p}");
                })
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(declared, template_params(path), "{method} {path}");
            // The unknown values used below fit the documented formats.
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path"
                    && let Some(pattern) = p["schema"]["pattern"].as_str()
                {
                    let value = unknown(p["name"].as_str().unwrap());
                    assert!(fits(pattern, value), "{value} does not fit {pattern}");
                }
            }
        }
    });
}

/// Whether `value` fits the simple `^...$` patterns of the document: checked by Python's `re`,
/// an engine we do not maintain.
fn fits(pattern: &str, value: &str) -> bool {
    let out = Command::new("python3")
        .args([
            "-c",
            "import re, sys; sys.exit(0 if re.search(sys.argv[1], sys.argv[2]) else 1)",
            pattern,
            value,
        ])
        .output()
        .unwrap();
    out.status.success()
}

/// What a probe needs to call an operation: credentials for each security scheme.
struct Credentials {
    session: String,
    access_token: String,
    client_id: String,
    client_secret: String,
}

/// An admin (who passes every role check, so that unknown ids are what the routes meet) with an
/// app registered, its client credentials and an app-level access token.
async fn credentials(node: &TestNode) -> Credentials {
    let admin = node.user("root").await;
    node.node
        .store
        .set_role("root", minihost_core::Role::Admin)
        .await
        .unwrap();
    let r = admin
        .post("/api/v1/apps", &json!({"id": "probe", "name": "Probe"}))
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    let client_id = r.1["client_id"].as_str().unwrap().to_owned();
    let client_secret = r.1["client_secret"].as_str().unwrap().to_owned();
    let anon = node.client();
    let r = anon
        .send(
            anon.raw(Method::POST, "/oauth/token")
                .basic_auth(&client_id, Some(&client_secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(r.0, 200, "{r:?}");
    Credentials {
        session: admin.token.clone().unwrap(),
        access_token: r.1["access_token"].as_str().unwrap().to_owned(),
        client_id,
        client_secret,
    }
}

/// One way of calling an operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Probe {
    /// Credentials, unknown ids, the documented example body.
    UnknownIds,
    /// A JSON body cut short.
    MalformedJson,
    /// The body with the wrong content type.
    WrongContentType,
    /// No credentials at all.
    NoCredentials,
}

/// One operation of the document, as the probes see it.
struct Operation<'d> {
    path: &'d str,
    method: Method,
    op: &'d Value,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn has_json_body(&self) -> bool {
        self.op["requestBody"]["content"]
            .get("application/json")
            .is_some()
    }

    fn has_form_body(&self) -> bool {
        self.op["requestBody"]["content"]
            .get("application/x-www-form-urlencoded")
            .is_some()
    }

    fn schemes(&self) -> Vec<String> {
        self.op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|req| req.as_object().unwrap().keys().cloned())
            .collect()
    }

    /// Whether the operation can be called without credentials (no security, or an empty
    /// alternative).
    fn open_to_anyone(&self) -> bool {
        match self.op["security"].as_array() {
            None => true,
            Some(reqs) => reqs.iter().any(|r| r.as_object().unwrap().is_empty()),
        }
    }

    fn is_upgrade(&self) -> bool {
        self.op["responses"].get("101").is_some()
    }

    fn statuses(&self) -> BTreeSet<u16> {
        self.op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    fn example(&self) -> Value {
        let example = &self.op["requestBody"]["content"]["application/json"]["example"];
        assert!(
            !example.is_null(),
            "{}: the request body has no example",
            self.name()
        );
        example.clone()
    }

    fn request(&self, c: &Client, creds: &Credentials, probe: Probe) -> reqwest::RequestBuilder {
        let mut rb = c.http.request(
            self.method.clone(),
            format!("{}{}", c.base, concrete(self.path)),
        );
        if probe != Probe::NoCredentials {
            for scheme in self.schemes() {
                rb = match scheme.as_str() {
                    "session" => rb.bearer_auth(&creds.session),
                    "access_token" => rb.bearer_auth(&creds.access_token),
                    "client" => rb.basic_auth(&creds.client_id, Some(&creds.client_secret)),
                    "session_query" | "ws_ticket" => continue,
                    other => panic!("{}: unknown security scheme {other}", self.name()),
                };
                break;
            }
        }
        if self.is_upgrade() {
            rb = rb
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        }
        let form = "grant_type=client_credentials&token=unknown-token";
        match probe {
            Probe::MalformedJson => rb
                .header(CONTENT_TYPE, "application/json")
                .body("{ not json"),
            Probe::WrongContentType if self.has_json_body() => rb
                .header(CONTENT_TYPE, "text/plain")
                .body(self.example().to_string()),
            Probe::WrongContentType => rb
                .header(CONTENT_TYPE, "application/json")
                .body(json!({"token": "unknown-token"}).to_string()),
            _ if self.has_json_body() => rb.json(&self.example()),
            _ if self.has_form_body() => rb
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form),
            _ => rb,
        }
    }
}

/// Sends one probe; checks that the status is documented for the operation, is not a 5xx, and
/// that an error comes in the operation's error format. Returns the status and the body.
async fn check(
    c: &Client,
    creds: &Credentials,
    op: &Operation<'_>,
    probe: Probe,
    failures: &mut Vec<String>,
) -> (u16, Value) {
    let r = op.request(c, creds, probe).send().await.unwrap();
    let status = r.status().as_u16();
    let headers: HeaderMap = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let what = format!("{} ({probe:?}) answered {status} {text}", op.name());
    if !op.statuses().contains(&status) {
        failures.push(format!("{what}: status not in the document"));
    }
    if status >= 500 {
        failures.push(format!("{what}: a server error for a client's mistake"));
    }
    if status >= 400 {
        let json = headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        let shaped = if op.path.starts_with("/oauth/") {
            body["error"].is_string() && body["error_description"].is_string()
        } else {
            body["error"]["code"].is_string() && body["error"]["message"].is_string()
        };
        if !(json && shaped) {
            failures.push(format!("{what}: not the documented error body"));
        }
    }
    (status, body)
}

#[tokio::test]
async fn every_route_answers_bad_requests_only_with_documented_statuses() {
    on_every_backend!(|node| {
        let c = node.client();
        let doc = c.get("/api/v1/openapi.json").await.1;
        let creds = credentials(&node).await;
        let mut ops: Vec<Operation> = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    ops.push(Operation {
                        path,
                        method: Method::from_bytes(m.to_uppercase().as_bytes()).unwrap(),
                        op,
                    });
                }
            }
        }
        // Signing out ends the session the other probes use: last.
        ops.sort_by_key(|o| o.path == "/api/v1/sessions/current");

        let mut failures = Vec::new();
        let mut probes = 0;
        for op in &ops {
            let (status, _) = check(&c, &creds, op, Probe::UnknownIds, &mut failures).await;
            probes += 1;
            if !template_params(op.path).is_empty() && op.path != "/api/v1/apps/{app}/versions" {
                // An unknown id is a 404, whatever else the request carries, except for a
                // submission, where the app named is the manifest's (422 when they differ).
                if status != 404 && status != 403 {
                    failures.push(format!("{}: unknown ids answered {status}", op.name()));
                }
            }
            if op.has_json_body() {
                let (status, body) =
                    check(&c, &creds, op, Probe::MalformedJson, &mut failures).await;
                if (status, body["error"]["code"].as_str()) != (400, Some("malformed_json")) {
                    failures.push(format!(
                        "{}: malformed JSON answered {status} {body}",
                        op.name()
                    ));
                }
                let (status, _) =
                    check(&c, &creds, op, Probe::WrongContentType, &mut failures).await;
                if status != 415 {
                    failures.push(format!("{}: text/plain answered {status}", op.name()));
                }
                probes += 2;
            }
            if op.has_form_body() {
                let (status, body) =
                    check(&c, &creds, op, Probe::WrongContentType, &mut failures).await;
                if (status, body["error"].as_str()) != (400, Some("invalid_request")) {
                    failures.push(format!(
                        "{}: a JSON body answered {status} {body}",
                        op.name()
                    ));
                }
                probes += 1;
            }
            if !op.open_to_anyone() {
                let (status, _) = check(&c, &creds, op, Probe::NoCredentials, &mut failures).await;
                if status != 401 {
                    failures.push(format!("{}: no credentials answered {status}", op.name()));
                }
                probes += 1;
            }
        }
        assert!(probes > 100, "{probes} probes");
        assert!(
            failures.is_empty(),
            "{} ({}):\n{}",
            failures.len(),
            node.backend(),
            failures.join("\n")
        );
    });
}

#[tokio::test]
async fn a_method_a_path_does_not_have_is_a_json_405_with_allow() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let r = alice.raw(Method::PATCH, "/api/v1/me").send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "GET,HEAD");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": {
                "code": "method_not_allowed",
                "message": "PATCH is not allowed here; the Allow header lists the methods this path answers"
            }})
        );
    });
}

/// The status and body `c` gets for `body` sent as JSON text to `path`.
async fn post_text(c: &Client, path: &str, body: &str) -> (u16, Value) {
    c.send(
        c.raw(Method::POST, path)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned()),
    )
    .await
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[tokio::test]
async fn bad_bodies_and_queries_are_explained_in_plain_words() {
    on_every_backend!(|node| {
        let anon = node.client();
        let alice = node.user("alice").await;
        let conv = alice.group("g", &[]).await;
        let read = format!("/api/v1/conversations/{conv}/read");
        let members = format!("/api/v1/conversations/{conv}/members");
        let messages = format!("/api/v1/conversations/{conv}/messages");
        let cases: Vec<(&Client, &str, &str, Value)> = vec![
            (
                &anon,
                "/api/v1/accounts",
                r#"{"username": x}"#,
                error(
                    "malformed_json",
                    "the body is not valid JSON: expected value at line 1 column 14",
                ),
            ),
            (
                &anon,
                "/api/v1/accounts",
                r#"{"username": "#,
                error(
                    "malformed_json",
                    "the body is not valid JSON: EOF while parsing a value at line 1 column 13",
                ),
            ),
            (
                &anon,
                "/api/v1/accounts",
                r#"{"username": "bob", "password": "long enough"}"#,
                error("invalid_body", "field `display_name`: missing"),
            ),
            (
                &anon,
                "/api/v1/sessions",
                r#"{"username": "bob", "password": "x", "otp": 1}"#,
                error(
                    "invalid_body",
                    "field `otp`: unknown; expected `username` or `password`",
                ),
            ),
            (
                &anon,
                "/api/v1/sessions",
                "[]",
                error("invalid_body", "the body must be a JSON object"),
            ),
            (
                &alice,
                &read,
                r#"{"seq": "1"}"#,
                error(
                    "invalid_body",
                    r#"field `seq`: invalid type: string "1", expected an integer"#,
                ),
            ),
            (
                &alice,
                &members,
                r#"{"usernames": "bob"}"#,
                error(
                    "invalid_body",
                    r#"field `usernames`: invalid type: string "bob", expected an array"#,
                ),
            ),
            (
                &alice,
                &messages,
                r#"{"content": {"type": "text"}}"#,
                error("invalid_body", "field `content.text`: missing"),
            ),
        ];
        for (client, path, body, expected) in cases {
            let r = post_text(client, path, body).await;
            assert_eq!(r, (400, expected), "{path} {body}");
        }

        assert_eq!(
            alice.get(&format!("{messages}?limit=ten")).await,
            (
                400,
                error(
                    "invalid_query",
                    "query parameter `limit`: invalid digit found in string"
                )
            )
        );
        assert_eq!(
            alice.get(&format!("{messages}?since=3")).await,
            (
                400,
                error(
                    "invalid_query",
                    "query parameter `since`: unknown; expected one of `before`, `after`, `limit`"
                )
            )
        );
    });
}

#[tokio::test]
async fn errors_axum_makes_by_itself_are_json_too() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        // Not a WebSocket handshake.
        let r = alice.get("/api/v1/ws").await;
        assert_eq!(
            r,
            (
                400,
                error("bad_request", "Connection header did not include 'upgrade'")
            )
        );
        // A path segment that is not UTF-8.
        let r = alice.get("/api/v1/conversations/%FF").await;
        assert_eq!(r.0, 400, "{r:?}");
        assert_eq!(r.1["error"]["code"], "bad_request", "{r:?}");
        assert!(r.1["error"]["message"].is_string(), "{r:?}");
    });
}
