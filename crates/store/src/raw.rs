//! Statements run straight through sqlx on the pool sea-orm manages, for the
//! hot reads where sea-orm's statement building and by-name decoding cost
//! several times the query itself (issue 7). Rows decode by position.

use std::sync::Arc;

use sea_orm::sqlx::{self, ColumnIndex, Decode, Row, Type};
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
use uuid::Uuid;

use crate::{Backend, Result, Store, StoreError};

/// A value bound to a placeholder.
pub(crate) enum Bind {
    Uuid(Uuid),
    /// One array parameter; PostgreSQL only.
    Uuids(Vec<Uuid>),
    Text(String),
    Int(i64),
}

/// A row type read by column position, on either backend.
pub(crate) trait Positional: Sized {
    /// What the error says was being read, e.g. "an opportunity row".
    const WHAT: &'static str;

    fn decode<'row, R>(row: &'row R) -> Result<Self, sqlx::Error>
    where
        R: Row,
        usize: ColumnIndex<R>,
        Uuid: Decode<'row, R::Database> + Type<R::Database>,
        String: Decode<'row, R::Database> + Type<R::Database>,
        i64: Decode<'row, R::Database> + Type<R::Database>;
}

/// `Positional::decode` with its bounds, for an impl to give the body:
/// `positional_decode!(|row| Ok(Model { id: row.try_get(0)?, ... }));`
macro_rules! positional_decode {
    (|$row:ident| $body:expr) => {
        fn decode<'row, R>($row: &'row R) -> Result<Self, ::sea_orm::sqlx::Error>
        where
            R: ::sea_orm::sqlx::Row,
            usize: ::sea_orm::sqlx::ColumnIndex<R>,
            ::uuid::Uuid: ::sea_orm::sqlx::Decode<'row, R::Database> + ::sea_orm::sqlx::Type<R::Database>,
            String: ::sea_orm::sqlx::Decode<'row, R::Database> + ::sea_orm::sqlx::Type<R::Database>,
            i64: ::sea_orm::sqlx::Decode<'row, R::Database> + ::sea_orm::sqlx::Type<R::Database>,
        {
            $body
        }
    };
}
pub(crate) use positional_decode;

/// The `$n` or `?` placeholder of the `position`th bind.
pub(crate) fn placeholder(backend: Backend, position: usize) -> String {
    match backend {
        Backend::Postgres => format!("${position}"),
        Backend::Sqlite => "?".to_owned(),
    }
}

/// Runs `sql` on a connection of the store's pool. The statement is
/// prepared once per pooled connection (sqlx caches it by its text).
pub(crate) async fn fetch<M: Positional>(store: &Store, sql: String, binds: Vec<Bind>) -> Result<Vec<M>> {
    macro_rules! run_on {
        ($pool:expr, $bind:expr) => {{
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for bind in binds {
                query = $bind(query, bind)?;
            }
            let mut connection = $pool.acquire().await.map_err(acquire_error)?;
            let rows = query.fetch_all(&mut *connection).await.map_err(query_error)?;
            let mut models = Vec::with_capacity(rows.len());
            for row in &rows {
                models.push(
                    M::decode(row).map_err(|error| StoreError::Internal(format!("reading {}: {error}", M::WHAT)))?,
                );
            }
            Ok(models)
        }};
    }
    match store.backend() {
        Backend::Postgres => run_on!(store.db.get_postgres_connection_pool(), bind_postgres),
        Backend::Sqlite => run_on!(store.db.get_sqlite_connection_pool(), bind_sqlite),
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_postgres(query: PgQuery<'_>, bind: Bind) -> Result<PgQuery<'_>> {
    Ok(match bind {
        Bind::Uuid(value) => query.bind(value),
        Bind::Uuids(values) => query.bind(values),
        Bind::Text(value) => query.bind(value),
        Bind::Int(value) => query.bind(value),
    })
}

fn bind_sqlite(query: SqliteQuery<'_>, bind: Bind) -> Result<SqliteQuery<'_>> {
    Ok(match bind {
        Bind::Uuid(value) => query.bind(value),
        Bind::Uuids(_) => return Err(StoreError::Internal("SQLite has no array parameters".to_owned())),
        Bind::Text(value) => query.bind(value),
        Bind::Int(value) => query.bind(value),
    })
}

/// Errors are wrapped as sea-orm wraps them, so that [`StoreError`]'s one
/// classification applies: failing to get a connection is UNAVAILABLE.
fn acquire_error(error: sqlx::Error) -> StoreError {
    let error = match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    };
    StoreError::from(error)
}

pub(crate) fn query_error(error: sqlx::Error) -> StoreError {
    StoreError::from(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error))))
}

/// For a statement run on the pool itself: acquiring is part of it.
pub(crate) fn execute_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => acquire_error(error),
        other => query_error(other),
    }
}
