//! `recur_rows(?)`: a table-valued function over rows built in Rust, so that a batch of
//! occurrences (or of coverage cells) is written by one `INSERT … SELECT` statement instead of
//! one statement per row.
//!
//! Run once per row, an `INSERT` pays SQLite's per-statement work every time: binding eight
//! values, opening a cursor on the table and on each index (each positioned from its root),
//! then halting, closing and resetting. Those were about a third of what storing an
//! occurrence cost. One statement over this table opens its cursors once and only steps the
//! rows through; an occurrence insert's `RETURNING` clause names the rows that were new.

use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::rc::Rc;

use rusqlite::types::{ToSql, ToSqlOutput, Value};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{Connection, ffi};

/// The name of the function, and the type tag of the pointer bound to its argument.
const NAME: &CStr = c"recur_rows";

/// Columns `c0` … `c7` (a shorter row leaves the rest NULL), then the hidden argument.
pub(super) const WIDTH: usize = 8;

/// The rows of one statement, bound as a pointer (SQLite's pointer-passing interface: the
/// value can only be read by code that knows its type tag).
#[derive(Debug)]
pub(super) struct Rows {
    width: usize,
    cells: Vec<Value>,
}

impl Rows {
    /// Rows of `width` (at most [`WIDTH`]) values each.
    pub fn new(width: usize) -> Rows {
        assert!(width <= WIDTH);
        Rows {
            width,
            cells: Vec::new(),
        }
    }

    pub fn push(&mut self, row: impl IntoIterator<Item = Value>) {
        let before = self.cells.len();
        self.cells.extend(row);
        debug_assert_eq!(self.cells.len() - before, self.width);
    }

    pub fn len(&self) -> usize {
        self.cells.len() / self.width.max(1)
    }

    /// The statement parameter that hands these rows to `recur_rows(?)`.
    pub fn bind(self) -> Bound {
        Bound(Rc::new(self))
    }
}

/// Binds the rows to a statement parameter.
pub(super) struct Bound(Rc<Rows>);

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
            Cow::Borrowed(c"CREATE TABLE x(c0, c1, c2, c3, c4, c5, c6, c7, rows HIDDEN)"),
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
                && c.column() == WIDTH as c_int
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
        self.rows.is_none_or(|r| self.at >= r.len())
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let cell = self.rows.and_then(|r| {
            let i = i as usize;
            (i < r.width).then(|| &r.cells[self.at * r.width + i])
        });
        match cell {
            Some(v) => ctx.set_result(v),
            None => Ok(()),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.at as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_given_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        let mut rows = Rows::new(3);
        rows.push([Value::Integer(1), Value::Blob(vec![0, 1]), Value::Null]);
        rows.push([Value::Integer(2), Value::Text("x".into()), Value::Real(0.5)]);
        let got: Vec<(i64, String, String, Option<i64>)> = conn
            .prepare("SELECT c0, typeof(c1), typeof(c2), c3 FROM recur_rows(?1)")
            .unwrap()
            .query_map([rows.bind()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            got,
            [
                (1, "blob".into(), "null".into(), None),
                (2, "text".into(), "real".into(), None)
            ]
        );
        // No rows, or no argument: an empty table.
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM recur_rows(?1)",
                [Rows::new(2).bind()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM recur_rows(NULL)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
