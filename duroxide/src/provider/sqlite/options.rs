//! What a caller can tune when opening a SQLite store: durability, pool size, page size,
//! and whether it may create and migrate the database. How the
//! options are applied lives in `connection`.

use super::*;

/// How hard SQLite works to keep committed data on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// Starts, events and turns are on disk before they are acknowledged: nothing
    /// acknowledged is lost. Each commits with `synchronous = FULL`, or, under load, commits
    /// its WAL frames and waits for a flush of the WAL beside the writer, which nothing
    /// acts on before (see the module docs). Lock-only writes and activity completions
    /// skip their own fsync (a power loss only repeats that work).
    #[default]
    Full,
    /// `synchronous = NORMAL`: WAL is fsynced at checkpoints. A power loss may drop the
    /// most recent commits (the database stays consistent; the affected turns run again).
    Normal,
}

/// Options for [`SqliteProvider::new`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability mode (default [`SqliteDurability::Full`]).
    pub durability: SqliteDurability,
    /// Read connections (file databases; in memory the one writer connection also reads).
    /// Writes always go through one connection.
    pub max_connections: u32,
    /// How long a write waits for another process's write lock.
    pub busy_timeout: Duration,
    /// Page size in bytes of a database file this store creates (a power of two from 512
    /// to 65536); an existing file keeps the size it was created with. The default, 1024,
    /// suits duroxide's small rows: a turn modifies several B-tree pages, and every
    /// modified page is written to the WAL and fsynced in full, so smaller pages make
    /// each durable commit cheaper (see `docs/performance.md`).
    pub page_size: u32,
    /// Open only a database that already exists at this duroxide's schema: never create
    /// the file, never apply migrations. A missing file, a file without duroxide's schema,
    /// or one whose schema is older or newer than this version fails with
    /// [`ProviderError::Configuration`] saying so. For tools that must not write where
    /// they only read (the `duroxide` CLI opens stores this way). Default `false`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), duroxide::ProviderError> {
    /// use duroxide::{SqliteOptions, SqliteProvider};
    /// let options = SqliteOptions { existing_only: true, ..Default::default() };
    /// // Fails instead of creating ./app.db when it does not exist.
    /// let store = SqliteProvider::new("sqlite:./app.db", Some(options)).await?;
    /// # Ok(()) }
    /// ```
    pub existing_only: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: SqliteDurability::Full,
            max_connections: 4,
            busy_timeout: Duration::from_secs(10),
            page_size: 1024,
            existing_only: false,
        }
    }
}
