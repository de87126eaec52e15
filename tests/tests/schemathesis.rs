//! Schemathesis against the live API (issue 12): the real application (worker and API) on the
//! real Temporal dev server and PostgreSQL, its own `GET /openapi.json` as the contract, every
//! check and every phase (examples, coverage, fuzzing, stateful, the last following the
//! document's links), a fixed seed and example budget; once with a service token and once with
//! a client token. No answer may be a server error, break the document (status, headers,
//! content type, body schema) or drop the connection. `./dev test` installs the pinned
//! schemathesis (`LIVESESSIONS_TEST_SCHEMATHESIS`); run with `--nocapture` to see its counts.

use chrono::{TimeDelta, Timelike, Utc};
use livesessions_domain::{ClientId, Party, Plan, Plans, ProviderId, Role};
use livesessions_tests::{Backend, TestApp, TestOptions, test_policy};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Generated cases per operation and phase.
const MAX_EXAMPLES: u32 = 40;

/// The seed of every run, so a run repeats.
const SEED: u64 = 20_261_126;

/// The objects the generated requests may name, so that ids in paths can exist: a client (with
/// credits for every booking a run makes, see [`plans`]) and their provider (with availability
/// every day), a requested session, a confirmed one with its room and the client's join token, a
/// messaging session, and a fee the client owes; and start times a booking or a reschedule may
/// pick, an hour apart, more than a run books.
struct Seeded {
    client: ClientId,
    provider: ProviderId,
    sessions: Vec<String>,
    room: String,
    join_token: String,
    fee_key: String,
    starts: Vec<String>,
}

impl Seeded {
    async fn new(app: &TestApp) -> Self {
        let (client, provider) = app.subscriber_and_therapist().await;
        let every_day =
            ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
                .map(|day| json!({"day": day, "start": "00:00", "end": "23:59"}));
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/v1/providers/{provider}/availability"),
                Some(&app.token(Role::Provider, provider)),
                Some(json!({"weekly": every_day})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let tomorrow = (Utc::now() + TimeDelta::days(1)).with_minute(0).expect("on the hour");
        let requested = app.book(client, provider, tomorrow).await;
        let confirmed = app.book_confirmed(client, provider, tomorrow + TimeDelta::hours(1)).await;
        let (room, join_token) = app.room_and_join_token(confirmed.id, Party::Client).await;
        let fee_key = app.owe_fee(&confirmed).await;
        let (status, messaging) = app
            .post(
                "/v1/messaging-sessions",
                &app.service_token(),
                json!({"client_id": client, "provider_id": provider}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{messaging}");
        let messaging = messaging["id"].as_str().expect("an id").to_string();
        let starts = (4..1_000)
            .map(|n| (tomorrow + TimeDelta::hours(n)).format("%FT%TZ").to_string())
            .collect();
        Self {
            client,
            provider,
            sessions: vec![requested.id.to_string(), confirmed.id.to_string(), messaging],
            room: room.to_string(),
            join_token,
            fee_key,
            starts,
        }
    }

    /// The schemathesis configuration (the seed and the budget are on the command line): one
    /// worker, no example database (so runs repeat), the stateful budget, and the seeded objects as
    /// dictionaries that generated values draw from (ids in paths and queries half of the time,
    /// a body's people and a booking's terms most of the time), so requests reach more than
    /// "not found" and bookings succeed.
    fn config(&self) -> String {
        // A JSON array of plain strings is a TOML array too.
        let list = |values: &[String]| format!("{{ values = {} }}", json!(values));
        let one = |value: &dyn ToString| list(&[value.to_string()]);
        let parameters: Vec<String> = [
            ("path.client_id", "clients", 0.5),
            ("query.client_id", "clients", 0.5),
            ("body.client_id", "clients", 0.9),
            ("path.provider_id", "providers", 0.5),
            ("query.provider_id", "providers", 0.5),
            ("body.provider_id", "providers", 0.9),
            ("path.id", "sessions", 0.5),
            ("path.room_id", "rooms", 0.5),
            ("path.token", "join_tokens", 0.5),
            ("query.token", "join_tokens", 0.5),
            ("path.fee_key", "fee_keys", 0.5),
            ("body.starts_at", "starts", 0.9),
            ("body.duration_minutes", "durations", 0.9),
            ("body.service", "services", 0.9),
        ]
        .iter()
        .map(|(place, dictionary, probability)| {
            format!(
                "\"{place}\" = {{ dictionary = \"{dictionary}\", probability = {probability} }}"
            )
        })
        .collect();
        format!(
            r#"workers = 1
request-timeout = 60

[generation]
database = "none"

[phases.examples]
fill-missing = true

[phases.stateful]
max-steps = 10

[checks.positive_data_acceptance]
# A schema-valid request may still break a rule of the domain (402, 422): API.md's refusals.
expected-statuses = ["2xx", "3xx", "401", "402", "403", "404", "409", "422", "429"]

[dictionaries]
clients = {clients}
providers = {providers}
sessions = {sessions}
rooms = {rooms}
join_tokens = {join_tokens}
fee_keys = {fee_keys}
starts = {starts}
durations = {{ values = [30, 45, 60] }}
services = {{ values = ["therapy"] }}

[parameters]
{parameters}
"#,
            clients = one(&self.client),
            providers = one(&self.provider),
            sessions = list(&self.sessions),
            rooms = one(&self.room),
            join_tokens = one(&self.join_token),
            fee_keys = one(&self.fee_key),
            starts = list(&self.starts),
            parameters = parameters.join("\n"),
        )
    }
}

/// The schemathesis package `./dev test` installs (`LIVESESSIONS_TEST_SCHEMATHESIS`).
fn schemathesis_path() -> PathBuf {
    match std::env::var_os("LIVESESSIONS_TEST_SCHEMATHESIS") {
        Some(path) => PathBuf::from(path),
        None => livesessions_tests::crate_dir().join("../.tools/schemathesis"),
    }
}

/// One schemathesis run: whether it exited 0, its JSON report, every request it sent (read
/// from its NDJSON events) and what it printed.
struct Run {
    passed: bool,
    report: Value,
    requests: Vec<Request>,
    output: String,
}

/// One request a run sent.
struct Request {
    /// `METHOD /path/{template}`.
    operation: String,
    /// The answer's status (0 when none came).
    status: u64,
    /// For a stateful step that followed a link: `<source> -> [<status>] <link> -> <target>`.
    link: Option<String>,
}

impl Run {
    /// Runs every phase and check against `app` with `token`, configured by `config`, keeping
    /// its reports in `dir`.
    fn new(app: &TestApp, config: &Path, token: &str, dir: &Path) -> Self {
        let name = uuid::Uuid::new_v4();
        let (report, events) =
            (dir.join(format!("report-{name}.json")), dir.join(format!("events-{name}.ndjson")));
        let output = Command::new("python3")
            .args(["-m", "schemathesis.cli", "--config-file"])
            .arg(config)
            .args(["--no-color", "run"])
            .arg(format!("{}/openapi.json", app.address))
            .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
            .arg("--max-examples")
            .arg(MAX_EXAMPLES.to_string())
            .arg("--seed")
            .arg(SEED.to_string())
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}"))
            .args(["--report", "json,ndjson", "--report-dir"])
            .arg(dir)
            .arg("--report-json-path")
            .arg(&report)
            .arg("--report-ndjson-path")
            .arg(&events)
            .env("PYTHONPATH", schemathesis_path())
            .current_dir(dir)
            .output()
            .expect("schemathesis runs (run the tests with ./dev test)");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        Self {
            passed: output.status.success(),
            report: serde_json::from_str(&text).unwrap_or(Value::Null),
            requests: requests(&std::fs::read_to_string(&events).unwrap_or_default()),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// The number printed after `label` in the output (the first time), e.g. `Scenarios:`.
    fn printed(&self, label: &str) -> Option<u64> {
        let after = self.output.split(label).nth(1)?;
        after.split_whitespace().next()?.parse().ok()
    }

    /// The operations that answered at least one request with `2xx`, in any phase.
    fn accepting(&self) -> BTreeSet<&str> {
        let accepted = self.requests.iter().filter(|r| (200..300).contains(&r.status));
        accepted.map(|request| request.operation.as_str()).collect()
    }

    /// The links the stateful phase followed, one a step.
    fn links(&self) -> impl Iterator<Item = &str> {
        self.requests.iter().filter_map(|request| request.link.as_deref())
    }

    /// What went wrong, if anything: a failed check, an error (a dropped connection among
    /// them), a phase that did not succeed, a stateful phase that followed no link, or an
    /// operation of `must_accept` that never accepted a request (so a run that only ever met
    /// refusals cannot pass).
    fn problems(&self, must_accept: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.passed {
            problems.push("schemathesis exited with failures".to_string());
        }
        for key in ["failures", "errors"] {
            if self.report[key].as_array().is_none_or(|found| !found.is_empty()) {
                problems.push(format!("{key}: {}", self.report[key]));
            }
        }
        for phase in ["examples", "coverage", "fuzzing", "stateful"] {
            let status = &self.report["phases"][phase]["status"];
            if status != "success" {
                problems.push(format!("phase {phase}: {status}"));
            }
        }
        if self.links().next().is_none() {
            problems.push("the stateful phase followed no link".to_string());
        }
        let accepting = self.accepting();
        for operation in must_accept {
            if !accepting.contains(operation) {
                problems.push(format!("{operation} never accepted a request"));
            }
        }
        problems
    }

    /// How many stateful steps followed a link from a booking (`POST /v1/sessions`).
    fn steps_from_bookings(&self) -> usize {
        self.links().filter(|link| link.starts_with("POST /v1/sessions -> ")).count()
    }

    /// The case counts, for the log.
    fn counts(&self) -> String {
        let cases = &self.report["test_cases"];
        format!(
            "{} cases generated, {} with failures, {} errored; {} stateful scenarios, {} of {} \
             links covered, {} steps following a link ({} from a booking); {} operations \
             accepted positive data; {:.1} s",
            cases["generated"],
            cases["with_failures"],
            cases["errored"],
            self.printed("Scenarios:").unwrap_or(0),
            self.printed("API Links:").unwrap_or(0),
            self.printed("covered /").unwrap_or(0),
            self.links().count(),
            self.steps_from_bookings(),
            self.accepting().len(),
            self.report["running_time"].as_f64().unwrap_or_default(),
        )
    }
}

/// Every request of a run, read from schemathesis's NDJSON events: each case of each finished
/// scenario, with its answer.
fn requests(events: &str) -> Vec<Request> {
    let scenarios: Vec<Value> = events
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|event| event["ScenarioFinished"]["recorder"].clone())
        .collect();
    let mut found = Vec::new();
    for recorder in &scenarios {
        for (id, case) in recorder["cases"].as_object().into_iter().flatten() {
            let value = &case["value"];
            found.push(Request {
                operation: format!(
                    "{} {}",
                    value["method"].as_str().unwrap_or_default(),
                    value["path"].as_str().unwrap_or_default()
                ),
                status: recorder["interactions"][id]["response"]["status_code"]
                    .as_u64()
                    .unwrap_or(0),
                link: (case["is_transition_applied"] == true)
                    .then(|| case["transition"]["id"].as_str().map(str::to_string))
                    .flatten(),
            });
        }
    }
    found
}

/// The default plans, but for a subscription of 10,000 credits: bookings that follow the rules
/// are held (not refused for want of a credit), so the stateful phase can follow them.
fn plans() -> Plans {
    let default = Plans::default();
    let plan = |id: &str| default.get(id).expect("a default plan").clone();
    let plenty = Plan { credits: 10_000, ..plan("subscription-standard") };
    let table = BTreeMap::from([
        ("subscription-standard".to_string(), plenty),
        ("eap-standard".to_string(), plan("eap-standard")),
        ("insurance-standard".to_string(), plan("insurance-standard")),
    ]);
    Plans::new(table).expect("valid plans")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_document() {
    let options = TestOptions { plans: Some(plans()), ..TestOptions::default() };
    let app = TestApp::spawn_with(Backend::Postgres, test_policy(), options).await;
    let seeded = Seeded::new(&app).await;
    let dir = std::env::temp_dir().join(format!("ls-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a folder for the run");
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, seeded.config()).expect("the configuration is written");
    let (mut problems, mut from_bookings) = (Vec::new(), 0);
    let (booking, reading) = ("POST /v1/sessions", "GET /v1/sessions/{id}");
    for (who, token, must_accept) in [
        ("service", app.service_token(), [booking, reading, "POST /v1/sessions/{id}/confirm"]),
        ("client", app.token(Role::Client, seeded.client), [booking, reading, "GET /v1/sessions"]),
    ] {
        let run = tokio::task::block_in_place(|| Run::new(&app, &config, &token, &dir));
        println!("schemathesis with a {who} token: {}\n{}", run.counts(), run.output);
        let found = run.problems(&must_accept).into_iter();
        problems.extend(found.map(|problem| format!("{who}: {problem}")));
        from_bookings += run.steps_from_bookings();
    }
    if from_bookings == 0 {
        problems.push("no stateful step followed a link from a booking".to_string());
    }
    assert!(problems.is_empty(), "{problems:#?} (reports in {})", dir.display());
    std::fs::remove_dir_all(&dir).expect("the run's folder is removed");
}

/// Found by the stateful phase: a messaging session answered `201` could still be `404` to an
/// immediate `GET` (the answer came from the workflow's query, the read model lagged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_messaging_session_can_be_read_at_once() {
    let app = TestApp::spawn(Backend::Postgres, test_policy()).await;
    let (client, provider) = app.subscriber_and_therapist().await;
    let service = app.service_token();
    let start_and_read = || async {
        let body = json!({"client_id": client, "provider_id": provider});
        let (status, started) = app.post("/v1/messaging-sessions", &service, body).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let path = format!("/v1/messaging-sessions/{}", started["id"].as_str().expect("an id"));
        let (status, read) = app.get(&path, &service).await;
        assert_eq!((status, &read), (StatusCode::OK, &started));
    };
    for _ in 0..5 {
        futures::future::join_all((0..8).map(|_| start_and_read())).await;
    }
}
