//! What a Temporal cluster needs before a worker or the API may use it: the namespace, and the
//! session search attributes registered on it. [`setup`] (the `livesessions setup` command)
//! registers what is missing through the operator service, as
//! `temporal operator search-attribute create` does, and is idempotent; [`check`] is what every
//! worker and API process runs before it starts, refusing with a message that says what to do.

use livesessions_workflows::search_attributes;
use std::collections::{BTreeMap, HashMap};
use temporalio_client::Client;
use temporalio_client::tonic::{Code, Request};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;

/// What [`setup`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetupReport {
    /// Search attributes it registered now.
    pub registered: Vec<String>,
    /// Search attributes that were there already.
    pub present: Vec<String>,
}

/// Why the cluster is not ready for livesessions.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The namespace does not exist (or this identity may not see it).
    #[error(
        "the Temporal namespace {0:?} does not exist: create it (`temporal operator namespace create --namespace {0}`, or in Temporal Cloud), then run `livesessions setup`"
    )]
    NoNamespace(String),
    /// Search attributes the workflows set are missing.
    #[error(
        "the Temporal namespace {namespace:?} lacks the search attributes {missing}: run `livesessions setup` (it registers them)"
    )]
    MissingSearchAttributes {
        /// The namespace.
        namespace: String,
        /// `Name (Type)`, comma-separated.
        missing: String,
    },
    /// A search attribute exists with another type; registration cannot change it.
    #[error(
        "the search attribute {name} exists in {namespace:?} as {found}, not {wanted}: remove it (`temporal operator search-attribute remove`) or use another namespace"
    )]
    WrongType {
        /// The namespace.
        namespace: String,
        /// The attribute.
        name: String,
        /// Its registered type.
        found: String,
        /// The type the workflows set.
        wanted: String,
    },
    /// The server refused or failed a call.
    #[error("Temporal answered {call}: {status}")]
    Server {
        /// Which call.
        call: &'static str,
        /// Its status.
        status: String,
    },
}

/// The session search attributes, name → type, from [`search_attributes::ALL`].
fn wanted() -> BTreeMap<&'static str, IndexedValueType> {
    search_attributes::ALL
        .iter()
        .map(|definition| {
            let (name, kind) = definition.split_once('=').expect("ALL holds Name=Type");
            (name, indexed_type(kind).expect("ALL names a known type"))
        })
        .collect()
}

/// The type a `Name=Type` definition names, as `--search-attribute` spells it.
fn indexed_type(name: &str) -> Option<IndexedValueType> {
    Some(match name {
        "Text" => IndexedValueType::Text,
        "Keyword" => IndexedValueType::Keyword,
        "Int" => IndexedValueType::Int,
        "Double" => IndexedValueType::Double,
        "Bool" => IndexedValueType::Bool,
        "Datetime" => IndexedValueType::Datetime,
        "KeywordList" => IndexedValueType::KeywordList,
        _ => return None,
    })
}

fn type_name(code: i32) -> String {
    IndexedValueType::try_from(code).map_or_else(|_| format!("type {code}"), |t| format!("{t:?}"))
}

/// The namespace exists: described by the workflow service.
async fn ensure_namespace(client: &Client, namespace: &str) -> Result<(), ClusterError> {
    let request =
        DescribeNamespaceRequest { namespace: namespace.to_string(), ..Default::default() };
    match client.connection().workflow_service().describe_namespace(Request::new(request)).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::NotFound => {
            Err(ClusterError::NoNamespace(namespace.to_string()))
        }
        Err(status) => {
            Err(ClusterError::Server { call: "DescribeNamespace", status: status.to_string() })
        }
    }
}

/// The custom search attributes registered on `namespace`, name → type code.
async fn registered(
    client: &Client,
    namespace: &str,
) -> Result<HashMap<String, i32>, ClusterError> {
    let request = ListSearchAttributesRequest { namespace: namespace.to_string() };
    let response = client
        .connection()
        .operator_service()
        .list_search_attributes(Request::new(request))
        .await
        .map_err(|s| ClusterError::Server {
            call: "ListSearchAttributes",
            status: s.to_string(),
        })?;
    Ok(response.into_inner().custom_attributes)
}

/// A search attribute the workflows set, by name and type.
type Attribute = (&'static str, IndexedValueType);

/// Splits the wanted attributes into missing and present, refusing one of another type.
fn compare(
    namespace: &str,
    found: &HashMap<String, i32>,
) -> Result<(Vec<Attribute>, Vec<String>), ClusterError> {
    let (mut missing, mut present) = (Vec::new(), Vec::new());
    for (name, kind) in wanted() {
        match found.get(name) {
            None => missing.push((name, kind)),
            Some(code) if *code == kind as i32 => present.push(name.to_string()),
            Some(code) => {
                return Err(ClusterError::WrongType {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    found: type_name(*code),
                    wanted: format!("{kind:?}"),
                });
            }
        }
    }
    Ok((missing, present))
}

/// Checks that `namespace` exists and registers the session search attributes it lacks. Run it
/// again and it registers nothing.
pub async fn setup(client: &Client, namespace: &str) -> Result<SetupReport, ClusterError> {
    ensure_namespace(client, namespace).await?;
    let (missing, present) = compare(namespace, &registered(client, namespace).await?)?;
    if !missing.is_empty() {
        let request = AddSearchAttributesRequest {
            search_attributes: missing.iter().map(|(n, t)| (n.to_string(), *t as i32)).collect(),
            namespace: namespace.to_string(),
        };
        client.connection().operator_service().add_search_attributes(Request::new(request)).await.map_err(
            |s| ClusterError::Server { call: "AddSearchAttributes", status: s.to_string() },
        )?;
    }
    Ok(SetupReport { registered: missing.iter().map(|(n, _)| n.to_string()).collect(), present })
}

/// Refuses a cluster whose namespace is missing or lacks a session search attribute (changing
/// nothing): the worker and the API run this before they start.
pub async fn check(client: &Client, namespace: &str) -> Result<(), ClusterError> {
    ensure_namespace(client, namespace).await?;
    let (missing, _) = compare(namespace, &registered(client, namespace).await?)?;
    if missing.is_empty() {
        return Ok(());
    }
    let missing = missing.iter().map(|(n, t)| format!("{n} ({t:?})")).collect::<Vec<_>>();
    Err(ClusterError::MissingSearchAttributes {
        namespace: namespace.to_string(),
        missing: missing.join(", "),
    })
}
