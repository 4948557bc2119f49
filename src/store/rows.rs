//! `recur_rows(?)`: a table-valued function over occurrence rows built in Rust, so that a
//! batch of occurrences is inserted by one `INSERT … SELECT` statement instead of one
//! statement per row.
//!
//! Run once per row, an `INSERT` pays SQLite's per-statement work every time: binding eight
//! values, opening a cursor on the table and on each index (each positioned from its root),
//! then halting, closing and resetting. Those were about a third of what storing an
//! occurrence cost. One statement over this table opens its cursors once and only steps the
//! rows through; its `RETURNING` clause names the rows that were new.

use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::rc::Rc;

use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{Connection, ffi};

use super::Identity;

/// The name of the function, and the type tag of the pointer bound to its argument.
const NAME: &CStr = c"recur_rows";

/// Column numbers: the row's values, then the hidden argument.
const COLUMNS: c_int = 7;

/// One occurrence row as inserted (`read_at` is the statement's own parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub rule: i64,
    pub identity: Identity,
    pub time: Option<i64>,
    pub signature: i64,
    pub origin: i64,
    pub line: i64,
    pub sample: String,
}

/// The rows of one statement, bound as a pointer (SQLite's pointer-passing interface: the
/// value can only be read by code that knows its type tag).
#[derive(Debug, Default)]
pub(super) struct Rows(pub Vec<Row>);

/// Binds the rows to a statement parameter.
pub(super) struct Bound(pub Rc<Rows>);

impl ToSql for Bound {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from_rc(self.0.clone(), NAME))
    }
}

/// Makes `recur_rows` available on this connection.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    const MODULE: Module<RowsTab> = Module::eponymous_only_module();
    conn.create_module(NAME, &MODULE, None)
}

#[repr(C)]
struct RowsTab {
    /// Base class; must be first.
    base: ffi::sqlite3_vtab,
}

unsafe impl<'vtab> VTab<'vtab> for RowsTab {
    type Aux = ();
    type Cursor = RowsCursor<'vtab>;

    fn connect(
        _: &mut VTabConnection,
        _aux: Option<&()>,
        _module: &[u8],
        _database: &[u8],
        _table: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        Ok((
            Cow::Borrowed(
                c"CREATE TABLE x(rule, identity, event_time, signature, origin, line, sample, rows HIDDEN)",
            ),
            RowsTab {
                base: ffi::sqlite3_vtab::default(),
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut bound = false;
        for (c, mut usage) in info.constraints_and_usages() {
            if c.is_usable()
                && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
                && c.column() == COLUMNS
            {
                bound = true;
                usage.set_argv_index(1);
                usage.set_omit(true);
            }
        }
        // Without its argument the table is empty; a plan that supplies it is always better.
        info.set_idx_num(bound as c_int);
        info.set_estimated_cost(if bound { 1.0 } else { 1e12 });
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<RowsCursor<'vtab>> {
        Ok(RowsCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            at: 0,
            rows: None,
            phantom: PhantomData,
        })
    }
}

#[repr(C)]
struct RowsCursor<'vtab> {
    /// Base class; must be first.
    base: ffi::sqlite3_vtab_cursor,
    at: usize,
    rows: Option<&'vtab Rows>,
    phantom: PhantomData<&'vtab RowsTab>,
}

unsafe impl VTabCursor for RowsCursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        // SAFETY: a pointer with this type tag is only ever made by `Bound`, from an
        // `Rc<Rows>` that the statement holds until it is reset.
        self.rows = if idx_num > 0 {
            unsafe { args.get_pointer::<Rows>(0, NAME) }
        } else {
            None
        };
        self.at = 0;
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.at += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.rows.is_none_or(|r| self.at >= r.0.len())
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let Some(r) = self.rows.and_then(|r| r.0.get(self.at)) else {
            return Ok(());
        };
        match i {
            0 => ctx.set_result(r.rule),
            1 => match &r.identity {
                Identity::Text(t) => ctx.set_result(&**t),
                // Copied by SQLite (a transient result).
                Identity::Hash(h) => ctx.set_result(&h.to_be_bytes()[..]),
            },
            2 => ctx.set_result(r.time),
            3 => ctx.set_result(r.signature),
            4 => ctx.set_result(r.origin),
            5 => ctx.set_result(r.line),
            6 => ctx.set_result(r.sample.as_str()),
            _ => Ok(()),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.at as i64)
    }
}
