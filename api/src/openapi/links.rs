//! The links of the OpenAPI document: where an operation's answer leads. An answer about a
//! session (or a messaging session) names its `id`; an answer to an operation whose path names
//! a client or a provider (`PUT /v1/clients/{client_id}`, …) names that person. Each becomes a
//! link to every other operation whose path parameters it fills, so a reader of the document
//! (and schemathesis's stateful phase) can follow a booking to its confirmation, its changes
//! and its reads, and a person's record to what is theirs.

use serde_json::{Map, Value, json};

/// The answers that name a session by `id`: their schema, and the path of the operations on
/// that session.
const OWN_PATHS: [(&str, &str); 2] = [
    ("SessionSnapshot", "/v1/sessions/{id}"),
    ("MessagingSnapshot", "/v1/messaging-sessions/{id}"),
];

/// The path parameters that name a person.
const PEOPLE: [&str; 2] = ["client_id", "provider_id"];

/// One operation of the document.
struct Operation {
    path: String,
    method: String,
    id: String,
    path_parameters: Vec<String>,
}

/// Adds the links to every `2xx` answer of `document`.
pub(super) fn add(document: &mut Value) {
    let operations = operations(document);
    for source in &operations {
        let answers = &mut document["paths"][&source.path][&source.method]["responses"];
        for (status, answer) in answers.as_object_mut().into_iter().flatten() {
            if !status.starts_with('2') {
                continue;
            }
            let (own_path, supplied) = supplied(source, answer);
            let mut links = Map::new();
            for target in &operations {
                let fills = |name: &String| {
                    supplied.contains_key(name)
                        && (name != "id"
                            || own_path.is_some_and(|own| target.path.starts_with(own)))
                };
                let reachable = target.id != source.id
                    && !target.path_parameters.is_empty()
                    && target.path_parameters.iter().all(fills);
                if reachable {
                    let parameters: Map<String, Value> = target
                        .path_parameters
                        .iter()
                        .map(|name| (format!("path.{name}"), supplied[name].clone()))
                        .collect();
                    links.insert(
                        target.id.clone(),
                        json!({"operationId": target.id, "parameters": parameters}),
                    );
                }
            }
            if !links.is_empty() {
                answer["links"] = Value::Object(links);
            }
        }
    }
}

/// What `answer` of `source` names: the path of the operations on the session it is about (if
/// it is about one), and each path parameter it can fill, with the runtime expression that
/// reads it.
fn supplied(source: &Operation, answer: &Value) -> (Option<&'static str>, Map<String, Value>) {
    let schema_name = answer["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .and_then(|target| target.rsplit('/').next())
        .unwrap_or_default();
    let own_path = OWN_PATHS.iter().find(|(name, _)| *name == schema_name).map(|(_, path)| *path);
    let mut supplied = Map::new();
    if own_path.is_some() {
        supplied.insert("id".into(), json!("$response.body#/id"));
    }
    for person in PEOPLE {
        if source.path_parameters.iter().any(|name| name == person) {
            supplied.insert(person.into(), json!(format!("$request.path.{person}")));
        }
    }
    (own_path, supplied)
}

/// Every operation of `document`.
fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let path_parameters = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "path")
                .filter_map(|parameter| parameter["name"].as_str().map(str::to_string))
                .collect();
            found.push(Operation {
                path: path.clone(),
                method: method.clone(),
                id: operation["operationId"].as_str().unwrap_or_default().to_string(),
                path_parameters,
            });
        }
    }
    found
}
