//! The database: PostgreSQL in production and in every test run, SQLite as the embedded default.
//!
//! Each query is written once: [`with_pool!`] compiles the same body against whichever pool
//! [`Db`] holds, so both backends run the same SQL (`$1` placeholders work in both). Where the
//! two must differ (the schema's column types) the migrations come in two folders.

pub mod audit;
pub mod availability;
pub mod clients;
pub mod credits;
pub mod email_deliveries;
pub mod fee_collections;
pub mod idempotency;
pub mod ledger;
pub mod media_events;
pub mod media_rooms;
pub mod messaging_sessions;
pub mod operator_actions;
pub mod outbox;
pub mod providers;
pub mod room_messages;
pub mod sessions;
pub mod subscriptions;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// A connection pool to one of the two supported databases.
#[derive(Debug, Clone)]
pub enum Db {
    /// `postgres://…`
    Postgres(PgPool),
    /// `sqlite://…`
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the pool inside a [`Db`]; the body is compiled once per
/// backend, so one query text serves both.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Postgres($pool) => $body,
            $crate::storage::Db::Sqlite($pool) => $body,
        }
    };
}

/// Executes the statement `$query` (built once per backend) on the pool of a [`Db`]; answers the
/// number of rows it affected.
#[macro_export]
macro_rules! execute {
    ($db:expr, $query:expr) => {
        $crate::with_pool!($db, |pool| $query.execute(pool).await.map(|done| done.rows_affected()))
    };
}

/// Something the database refused or could not do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names neither PostgreSQL nor SQLite.
    #[error("database.url must start with postgres:// or sqlite://, not {0:?}")]
    UnsupportedUrl(String),
    /// A stored value no longer parses (a bug or a hand edit).
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StorageError {
    /// The name of the constraint a write violated, if that is why it failed.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            StorageError::Sqlx(sqlx::Error::Database(e)) => e.constraint(),
            _ => None,
        }
    }
}

/// Reads a stored text column back into a domain type.
pub(crate) fn parse_column<T, E: std::fmt::Display>(
    column: &str,
    parsed: Result<T, E>,
) -> Result<T, StorageError> {
    parsed.map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

impl Db {
    /// Connects to `url`. A SQLite file and its folder are created if missing, in WAL mode with
    /// foreign keys on.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // No ping before each use: it costs a round trip per transaction, and a connection
            // that died meanwhile fails its statement, which changes nothing (activities retry).
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(folder) = std::path::Path::new(options.get_filename()).parent() {
                std::fs::create_dir_all(folder).map_err(|e| StorageError::Sqlx(e.into()))?;
            }
            let pool = SqlitePoolOptions::new().max_connections(5).connect_with(options).await?;
            Ok(Db::Sqlite(pool))
        } else {
            Err(StorageError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}

/// A transaction that writes, on either backend.
pub enum WriteTx {
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
    /// On SQLite.
    Sqlite(Transaction<'static, Sqlite>),
}

/// Runs `$body` with `$conn` bound to the connection of a [`WriteTx`] (compiled once per
/// backend, like [`with_pool!`]). Reborrow it as `&mut *$conn` for each query.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::storage::WriteTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::storage::WriteTx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// Executes the statement `$query` (built once per backend) inside a [`WriteTx`]; answers the
/// number of rows it affected.
#[macro_export]
macro_rules! execute_in {
    ($tx:expr, $query:expr) => {
        $crate::with_tx!($tx, |conn| $query
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected()))
    };
}

impl Db {
    /// Opens a transaction that will write: `BEGIN IMMEDIATE` on SQLite, so two writers queue on
    /// the lock instead of failing when the second upgrades from reading.
    pub async fn begin_write(&self) -> Result<WriteTx, StorageError> {
        Ok(match self {
            Db::Postgres(pool) => WriteTx::Postgres(pool.begin().await?),
            Db::Sqlite(pool) => WriteTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

impl WriteTx {
    /// Commits every write of the transaction.
    pub async fn commit(self) -> Result<(), StorageError> {
        match self {
            WriteTx::Postgres(tx) => tx.commit().await?,
            WriteTx::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
