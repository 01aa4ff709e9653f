//! Multi-row inserts. On PostgreSQL the rows travel as one JSON parameter
//! (`INSERT ... SELECT ... FROM json_to_recordset($1)`): sea-orm's multi-row
//! VALUES binds one parameter per cell, up to 30,000 per statement, which
//! PostgreSQL parses and plans far slower than it inserts; one JSON text is
//! one bind, NULLs need no sentinel, and it stays inside the caller's
//! transaction (which COPY through sea-orm cannot). SQLite keeps multi-row
//! VALUES: it is in-process, so binds cost little.

use std::fmt::Write as _;

use sea_orm::sea_query::{ColumnType, Value, sea_value_to_json_value};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, EntityName, EntityTrait, IdenStatic,
    Iterable, QueryResult, Statement,
};

use crate::{Result, StoreError};

/// Rows up to which PostgreSQL still gets plain VALUES: a live call's one or
/// two rows keep one short prepared statement.
const MIN_JSON_ROWS: usize = 16;

/// Bind parameters per multi-row VALUES: under SQLite's 32,766.
const MAX_BIND_PARAMETERS: usize = 30_000;

/// JSON text per statement on PostgreSQL: large enough that a statement's
/// overhead vanishes, small enough to bound the memory of one batch.
const MAX_JSON_BYTES: usize = 8 << 20;

/// Inserts `rows` of entity `E`. Columns left `NotSet` in the first row
/// (an auto-increment key) are left to the database in every row.
/// `suffix` is appended as is (e.g. `ON CONFLICT (id) DO NOTHING`).
pub(crate) async fn insert_all<A>(db: &impl ConnectionTrait, rows: Vec<A>, suffix: &str) -> Result<()>
where
    A: ActiveModelTrait,
{
    for statement in statements(db.get_database_backend(), &rows, suffix)? {
        db.execute_raw(statement).await?;
    }
    Ok(())
}

/// Like [`insert_all`], with a `RETURNING` clause in `suffix`: the rows it
/// returns.
pub(crate) async fn insert_returning<A>(
    db: &impl ConnectionTrait,
    rows: Vec<A>,
    suffix: &str,
) -> Result<Vec<QueryResult>>
where
    A: ActiveModelTrait,
{
    let mut returned = Vec::new();
    for statement in statements(db.get_database_backend(), &rows, suffix)? {
        returned.extend(db.query_all_raw(statement).await?);
    }
    Ok(returned)
}

fn statements<A>(backend: DbBackend, rows: &[A], suffix: &str) -> Result<Vec<Statement>>
where
    A: ActiveModelTrait,
{
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let columns: Vec<<A::Entity as EntityTrait>::Column> =
        <A::Entity as EntityTrait>::Column::iter().filter(|column| first.get(*column).is_set()).collect();
    let table = Table {
        name: <A::Entity as Default>::default().table_name(),
        names: columns.iter().map(|column| column.as_str()).collect(),
        columns,
    };
    match backend {
        DbBackend::Postgres if rows.len() >= MIN_JSON_ROWS => json_statements(rows, &table, suffix),
        backend => values_statements(backend, rows, &table, suffix),
    }
}

/// The table and the columns a bulk insert writes.
struct Table<C> {
    name: &'static str,
    columns: Vec<C>,
    names: Vec<&'static str>,
}

fn json_statements<A>(
    rows: &[A],
    table: &Table<<A::Entity as EntityTrait>::Column>,
    suffix: &str,
) -> Result<Vec<Statement>>
where
    A: ActiveModelTrait,
{
    let Table { name: table_name, columns, names } = table;
    let mut record_type = Vec::with_capacity(columns.len());
    for column in columns {
        record_type.push(format!("{} {}", column.as_str(), pg_type(column.def().get_column_type())?));
    }
    let sql = format!(
        "INSERT INTO {table_name} ({list}) SELECT {list} FROM json_to_recordset($1::json) AS r({record_type}) {suffix}",
        list = names.join(", "),
        record_type = record_type.join(", "),
    );
    let statement = |json: String| Statement::from_sql_and_values(DbBackend::Postgres, &sql, [Value::from(json)]);
    let mut statements = Vec::new();
    let mut json = String::new();
    for row in rows {
        json.push(if json.is_empty() { '[' } else { ',' });
        json.push('{');
        for (index, column) in columns.iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            let _ = write!(json, "\"{}\":", names[index]);
            push_json(&mut json, &cell(row, *column, table_name)?)?;
        }
        json.push('}');
        if json.len() >= MAX_JSON_BYTES {
            json.push(']');
            statements.push(statement(std::mem::take(&mut json)));
        }
    }
    if !json.is_empty() {
        json.push(']');
        statements.push(statement(json));
    }
    Ok(statements)
}

fn cell<A: ActiveModelTrait>(row: &A, column: <A::Entity as EntityTrait>::Column, table: &str) -> Result<Value> {
    match row.get(column) {
        ActiveValue::Set(value) | ActiveValue::Unchanged(value) => Ok(value),
        ActiveValue::NotSet => Err(StoreError::Internal(format!("{table}.{} not set in every row", column.as_str()))),
    }
}

/// Appends one value as JSON; the common types without an intermediate
/// `serde_json::Value`.
fn push_json(json: &mut String, value: &Value) -> Result<()> {
    match value {
        Value::BigInt(Some(number)) => {
            let _ = write!(json, "{number}");
        }
        Value::Int(Some(number)) => {
            let _ = write!(json, "{number}");
        }
        Value::Uuid(Some(uuid)) => {
            let _ = write!(json, "\"{uuid}\"");
        }
        Value::String(Some(text)) => {
            push_json_string(json, text);
        }
        other => {
            let converted = sea_value_to_json_value(other);
            // JSON has no NaN or infinity; serde_json writes them as null,
            // which would silently change a value.
            if let Value::Double(Some(number)) = other
                && !number.is_finite()
            {
                return Err(StoreError::Internal(format!("bulk row: {number} has no JSON form")));
            }
            let _ = write!(json, "{converted}");
        }
    }
    Ok(())
}

/// Appends `text` as a JSON string, copying the runs between the characters
/// it escapes whole (score rows carry long JSON texts: B6).
fn push_json_string(json: &mut String, text: &str) {
    json.push('"');
    let mut copied = 0;
    // The escaped characters are ASCII, so byte positions are char boundaries.
    for (position, byte) in text.bytes().enumerate() {
        if byte != b'"' && byte != b'\\' && byte >= 0x20 {
            continue;
        }
        json.push_str(&text[copied..position]);
        match byte {
            b'"' => json.push_str("\\\""),
            b'\\' => json.push_str("\\\\"),
            control => {
                let _ = write!(json, "\\u{control:04x}");
            }
        }
        copied = position + 1;
    }
    json.push_str(&text[copied..]);
    json.push('"');
}

/// The record type `json_to_recordset` reads a column as.
fn pg_type(column_type: &ColumnType) -> Result<&'static str> {
    Ok(match column_type {
        ColumnType::Uuid => "uuid",
        ColumnType::BigInteger => "bigint",
        ColumnType::Integer => "integer",
        ColumnType::SmallInteger => "smallint",
        ColumnType::Double => "double precision",
        ColumnType::Float => "real",
        ColumnType::Boolean => "boolean",
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => "text",
        other => return Err(StoreError::Internal(format!("bulk insert of a {other:?} column"))),
    })
}

fn values_statements<A>(
    backend: DbBackend,
    rows: &[A],
    table: &Table<<A::Entity as EntityTrait>::Column>,
    suffix: &str,
) -> Result<Vec<Statement>>
where
    A: ActiveModelTrait,
{
    let Table { name: table_name, columns, names } = table;
    let per_statement = (MAX_BIND_PARAMETERS / columns.len().max(1)).max(1);
    let mut statements = Vec::new();
    for chunk in rows.chunks(per_statement) {
        let mut sql = format!("INSERT INTO {table_name} ({}) VALUES ", names.join(", "));
        let mut values = Vec::with_capacity(chunk.len() * columns.len());
        for (index, row) in chunk.iter().enumerate() {
            sql.push_str(if index == 0 { "(" } else { ", (" });
            for (position, column) in columns.iter().enumerate() {
                values.push(cell(row, *column, table_name)?);
                sql.push_str(if position == 0 { "" } else { ", " });
                // SQLite reads `$n` as a named parameter and looks each name
                // up among all of them: quadratic in a 30,000-value insert.
                match backend {
                    DbBackend::Postgres => {
                        let _ = write!(sql, "${}", values.len());
                    }
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(suffix);
        statements.push(Statement::from_sql_and_values(backend, sql, values));
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_json() {
        let edges = ["\"starts", "ends\\", "\u{0}\u{1f}\"\"", "ü\"ü"];
        for text in
            ["plain", "quote \" and \\ backslash", "tab\tnew\nline\u{1}", "ünïcødé 🚀", ""].into_iter().chain(edges)
        {
            let mut json = String::new();
            push_json_string(&mut json, text);
            let back: String = serde_json::from_str(&json).expect("valid JSON");
            assert_eq!(back, text);
        }
    }

    #[test]
    fn values_become_json_and_non_finite_numbers_are_refused() {
        let mut json = String::from("[");
        for value in [
            Value::BigInt(Some(-7)),
            Value::Int(Some(3)),
            Value::String(None),
            Value::Bool(Some(true)),
            Value::Double(Some(0.25)),
        ] {
            if json.len() > 1 {
                json.push(',');
            }
            push_json(&mut json, &value).expect("convertible");
        }
        json.push(']');
        assert_eq!(json, "[-7,3,null,true,0.25]");
        assert!(push_json(&mut String::new(), &Value::Double(Some(f64::NAN))).is_err());
    }
}
